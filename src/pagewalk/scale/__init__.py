"""``pagewalk scale``: page-fault throughput on N simulated CPUs in virtual
time, the global page_table_lock against the split ptlock (docs/scalability.md)."""

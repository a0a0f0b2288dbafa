"""``pagewalk bench``: the host kernel's and the model's cost per 4 KiB page
for the same operations, measured in the same run over the same sizes.

Operations (``OPERATIONS``): ``write_fault`` (anonymous), ``read_fault`` (zero
page), ``cow_fault`` (a fork child writes), ``fork`` (per populated page),
``dontneed``, ``munmap``, ``gup`` and ``mem_read``.  The host side is
:mod:`pagewalk.bench.host` (ctypes: mmap, C-speed strided touch loops, fork,
process_vm_readv, /proc/self/mem; its docstring says what each figure is net
of); the model side is :mod:`pagewalk.bench.model` (the public ``Kernel``
entry timed for each operation is in ``model.ENTRY``).  Also reported: the
model's bytes per resident page against the kernel's 72 B, and the model's
core dump of a 1 TiB sparse mapping.

From Python::

    from pagewalk.bench import run_bench, format_text
    report = run_bench(1024, 3, ["write_fault", "gup"])   # the --json dict
    print(format_text(report))
"""

from .host import OPERATIONS, HostUnavailable
from .run import format_text, machine_info, run_bench

__all__ = ["OPERATIONS", "HostUnavailable", "format_text", "machine_info", "run_bench"]

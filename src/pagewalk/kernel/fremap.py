"""mm/fremap.c (Linux 2.6.15): install_page and the linear case of
remap_file_pages, which is how MAP_POPULATE populates shared mappings.
Nonlinear mappings (VM_NONLINEAR) are not modelled."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .constants import EINVAL, ENOMEM, PAGE_MASK_LOW, PAGE_SHIFT, PAGE_SIZE, VM_NONLINEAR, VM_SHARED
from .locks import down_read, up_read
from .page import Page, PG_anon, put_page, set_page_dirty
from .pgalloc import get_locked_pte, pte_unmap_unlock
from .pgtable import _PAGE_DIRTY, PTE_MASK, PTE_PRESENT_MASK, pte_index
from .rmap import page_add_file_rmap, page_remove_rmap
from .vma import linear_page_index, vm_area_struct

if TYPE_CHECKING:
    from .mm import mm_struct, task_struct


def zap_pte(mm: mm_struct, vma: vm_area_struct, addr: int, ptes: object) -> int:
    """Drop whatever a pte maps before install_page reuses it (1 if a page was
    mapped, so rss is unchanged)."""
    i = pte_index(addr)
    pte = ptes[i]
    ptes[i] = 0
    if not pte & PTE_PRESENT_MASK:
        return 0
    page = mm.k.alloc.mem_map[(pte & PTE_MASK) >> PAGE_SHIFT]
    if pte & _PAGE_DIRTY:
        set_page_dirty(page)
    page_remove_rmap(page)
    put_page(mm.k.alloc, page)
    if page.flags & PG_anon:
        mm._anon_rss -= 1
        return 0
    return 1


def install_page(mm: mm_struct, vma: vm_area_struct, addr: int, page: Page, prot: int) -> int:
    """Map a page-cache page at addr; the caller's reference passes to the pte."""
    ptes, ptl = get_locked_pte(mm, addr)
    if ptes is None:
        return -ENOMEM
    file = vma.vm_file
    size = (file.i_size + PAGE_SIZE - 1) >> PAGE_SHIFT
    if page.mapping is None or page.index >= size:
        pte_unmap_unlock(ptes, ptl)
        return -EINVAL
    i = pte_index(addr)
    if not ptes[i] or not zap_pte(mm, vma, addr, ptes):
        mm._file_rss += 1
    ptes[i] = (page.pfn << PAGE_SHIFT) | prot
    page_add_file_rmap(page)
    pte_unmap_unlock(ptes, ptl)
    return 0


def sys_remap_file_pages(
    current: task_struct, start: int, size: int, prot: int, pgoff: int, flags: int
) -> int:
    """Only the linear case: populate a shared mapping's range from its file."""
    from .mmap import find_vma

    mm = current.mm
    if prot:
        return -EINVAL
    start &= ~PAGE_MASK_LOW
    size &= ~PAGE_MASK_LOW
    end = start + size
    if end <= start:
        return -EINVAL
    down_read(mm.mmap_sem)
    err = -EINVAL
    vma = find_vma(mm, start)
    if (
        vma is not None
        and vma.vm_flags & VM_SHARED
        and vma.vm_ops is not None
        and vma.vm_ops.populate is not None
        and start >= vma.vm_start
        and end <= vma.vm_end
        and not vma.vm_flags & VM_NONLINEAR
        and pgoff == linear_page_index(vma, start)
    ):
        err = vma.vm_ops.populate(vma, start, size, vma.vm_page_prot, pgoff, flags)
    up_read(mm.mmap_sem)
    return err

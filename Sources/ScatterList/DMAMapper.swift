/// Something that gives a scatter table's entries device (DMA) addresses: the role
/// of a device's `dma_map_ops` in the kernel.
///
/// Call it through ``ScatterTable/map(using:)`` and ``ScatterTable/unmap()``, which
/// keep the table's bookkeeping; a mapper only writes the DMA fields and keeps its
/// own state.
public protocol DMAMapper: AnyObject {
    /// Maps every data entry of `table`: writes ``ScatterEntry/dmaAddress`` and
    /// ``ScatterEntry/dmaLength`` of the first `n` entries, where `n` (returned) is
    /// the number of DMA segments, and leaves the rest 0. Segments may each cover
    /// several entries (coalescing), so `n` may be smaller than the entry count.
    ///
    /// - Throws: when the mapping cannot be made; the mapper then holds nothing for
    ///   the table.
    func map(_ table: ScatterTable) throws(ScatterListError) -> Int

    /// Undoes ``map(_:)`` for `table`, while its DMA fields are still set.
    func unmap(_ table: ScatterTable)
}

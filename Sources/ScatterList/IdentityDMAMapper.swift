/// A mapper for devices that address memory as the CPU does: every entry's DMA
/// address is its address in the direct view, with no coalescing. This is what
/// soft-RoCE (`rxe`, through `ib_dma_map_sg` on a virtual device) does.
public final class IdentityDMAMapper: DMAMapper, Sendable {
    /// Creates the mapper.
    public init() {}

    /// Sets each entry's DMA address to ``ScatterEntry/address`` and its DMA length
    /// to its length; returns the entry count.
    public func map(_ table: ScatterTable) throws(ScatterListError) -> Int {
        for index in table.indices {
            let entry = table[index]
            table[index].dmaAddress = UInt64(entry.address)
            table[index].dmaLength = entry.length
        }
        return table.count
    }

    /// Nothing to release: the identity mapping holds no state.
    public func unmap(_ table: ScatterTable) {}
}

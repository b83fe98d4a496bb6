extension ScatterTable {
    /// Maps the table for DMA with `mapper` and records ``mappedCount``; the DMA
    /// segments are the first ``mappedCount`` entries' ``ScatterEntry/dmaAddress``
    /// and ``ScatterEntry/dmaLength``. Mirrors the kernel's `dma_map_sgtable`.
    ///
    /// - Throws: whatever `mapper` throws (such as
    ///   ``ScatterListError/iovaSpaceExhausted(requestedPages:largestFreeRun:)``); the
    ///   table is then left unmapped, with every DMA field 0.
    public func map(using mapper: some DMAMapper) throws(ScatterListError) {
        precondition(!isMapped, "the table is already mapped")
        let segments: Int
        do {
            segments = try mapper.map(self)
        } catch {
            clearDMAFields()
            throw error
        }
        precondition(segments >= 0 && segments <= count, "a mapper returns 0...count segments")
        mappedCount = segments
        dmaMapper = mapper
    }

    /// Undoes ``map(using:)``: the mapper releases the mapping and every DMA field
    /// goes back to 0. Mirrors the kernel's `dma_unmap_sgtable`.
    public func unmap() {
        guard let mapper = dmaMapper else { preconditionFailure("the table is not mapped") }
        mapper.unmap(self)
        clearDMAFields()
        mappedCount = 0
        dmaMapper = nil
    }

    /// The DMA segments while mapped (the kernel's `for_each_sgtable_dma_sg`).
    public var dmaSegments: [(address: UInt64, length: Int)] {
        prefix(mappedCount).map { ($0.dmaAddress, $0.dmaLength) }
    }

    private func clearDMAFields() {
        for index in 0..<count {
            slot(index).pointee.dmaAddress = 0
            slot(index).pointee.dmaLength = 0
        }
    }
}

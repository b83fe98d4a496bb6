import IterExtract

extension ScatterTable {
    /// Where a slot is: its chunk and its index in the chunk.
    public struct SlotPosition: Hashable, Sendable, CustomStringConvertible {
        /// The chunk.
        public var chunk: Int
        /// The slot within the chunk.
        public var slot: Int

        /// The chunk and the slot, as `2.5`.
        public var description: String { "\(chunk).\(slot)" }
    }

    /// The slot at `position`: a data entry or a chain link.
    public subscript(position: SlotPosition) -> ScatterEntry {
        precondition(position.chunk >= 0 && position.chunk < chunks.count
                        && position.slot >= 0 && position.slot < chunkCapacity,
                     "slot \(position) is outside the table")
        return chunks[position.chunk][position.slot]
    }

    /// The position of the first entry, or `nil` for an empty table.
    public var firstPosition: SlotPosition? {
        count > 0 ? SlotPosition(chunk: 0, slot: 0) : nil
    }

    /// The position of the data entry after the one at `position`, following a
    /// chain link to the next chunk; `nil` after the END entry or after the last
    /// data entry. Mirrors the kernel's `sg_next`.
    public func next(after position: SlotPosition) -> SlotPosition? {
        if self[position].isEnd { return nil }
        return slotPosition(after: position)
    }

    /// The position of the data entry after `position` (ignoring END), or `nil` after
    /// the last data entry.
    func slotPosition(after position: SlotPosition) -> SlotPosition? {
        let index = position.chunk * dataSlotsPerChunk + position.slot
        guard index + 1 < count else { return nil }
        let next = SlotPosition(chunk: position.chunk, slot: position.slot + 1)
        return self[next].isChainLink ? SlotPosition(chunk: position.chunk + 1, slot: 0) : next
    }

    /// Every slot in chain order up to the last data entry, chain links included:
    /// the table as the kernel lays it out in memory.
    public var slots: [ScatterEntry] {
        guard count > 0 else { return [] }
        let last = count - 1
        let lastChunk = last / dataSlotsPerChunk
        return (0...lastChunk).flatMap { chunk in
            let end = chunk == lastChunk ? last % dataSlotsPerChunk + 1 : chunkCapacity
            return UnsafeBufferPointer(start: chunks[chunk], count: end)
        }
    }

    /// Puts the END marker on the last data entry and takes it off any other.
    /// Mirrors the kernel's `sg_mark_end`.
    public func markEnd() {
        precondition(count > 0, "an empty table has no entry to mark as the end")
        if let mark = endMarkIndex { slot(mark).pointee.isEnd = false }
        slot(count - 1).pointee.isEnd = true
        endMarkIndex = count - 1
    }

    /// The number of entries, from the first and following ``next(after:)``, whose
    /// bytes add up to at least `length`; 0 for a length of 0. Mirrors the kernel's
    /// `sg_nents_for_len`.
    ///
    /// - Throws: ``ScatterListError/tableTooShort(requested:available:)`` when the
    ///   entries up to END hold fewer bytes.
    public func nents(forLength length: Int) throws(ScatterListError) -> Int {
        precondition(length >= 0, "a length is not negative")
        if length == 0 { return 0 }
        var total = 0
        var entries = 0
        var position = firstPosition
        while let current = position {
            total += self[current].length
            entries += 1
            if total >= length { return entries }
            position = next(after: current)
        }
        throw .tableTooShort(requested: length, available: total)
    }
}

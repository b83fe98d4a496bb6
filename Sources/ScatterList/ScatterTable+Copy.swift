extension ScatterTable {
    /// Copies the table's bytes, after skipping the first `skip`, into `buffer` until
    /// either ends; returns the bytes copied. Mirrors the kernel's `sg_pcopy_to_buffer`.
    @discardableResult
    public func copy(into buffer: UnsafeMutableRawBufferPointer, skipping skip: Int = 0) -> Int {
        var pieces = MappingIterator(self, skipping: skip)
        var done = 0
        while done < buffer.count, let piece = pieces.next(maxLength: buffer.count - done) {
            buffer.baseAddress!.advanced(by: done).copyMemory(from: piece.bytes.baseAddress!, byteCount: piece.bytes.count)
            done += piece.bytes.count
        }
        return done
    }

    /// Copies `buffer` into the table's bytes, after skipping the first `skip`, until
    /// either ends; returns the bytes copied. Mirrors the kernel's `sg_pcopy_from_buffer`.
    @discardableResult
    public func copy(from buffer: UnsafeRawBufferPointer, skipping skip: Int = 0) -> Int {
        var pieces = MappingIterator(self, skipping: skip)
        var done = 0
        while done < buffer.count, let piece = pieces.next(maxLength: buffer.count - done) {
            piece.bytes.baseAddress!.copyMemory(from: buffer.baseAddress!.advanced(by: done), byteCount: piece.bytes.count)
            done += piece.bytes.count
        }
        return done
    }
}

extension IOIterator {
    /// Appends up to `n` bytes to the pipe, filling the newest buffer this iterator
    /// appended before taking a fresh page; `fill` initialises each new region.
    /// Returns the bytes appended (fewer only when the pool runs out of pages).
    mutating func appendToPipe(_ n: Int, fill: (UnsafeMutableRawBufferPointer) -> Void) -> Int {
        let pipe = self.pipe
        var appended = 0
        while appended < n {
            var buffer: PagePipe.Buffer
            if roomInNewestPipeBuffer > 0 {
                buffer = pipe.buffer(at: pipe.head - 1)
            } else if let fresh = pipe.pushPage() {
                buffer = fresh
            } else {
                break
            }
            let start = buffer.offset + buffer.length
            let step = min(n - appended, pageSize - start)
            fill(UnsafeMutableRawBufferPointer(start: buffer.page.baseAddress + start, count: step))
            buffer.length += step
            pipe.setBuffer(buffer, at: pipe.head - 1)
            appended += step
        }
        count -= appended
        return appended
    }

    /// The free bytes at the end of the newest buffer, if this iterator appended it.
    var roomInNewestPipeBuffer: Int {
        let pipe = self.pipe
        guard pipe.head > slot else { return 0 }
        let newest = pipe.buffer(at: pipe.head - 1)
        return pageSize - (newest.offset + newest.length)
    }

    /// Drops the last `n` bytes this iterator appended.
    mutating func revertPipe(_ n: Int) {
        let pipe = self.pipe
        var remaining = n
        while remaining > 0 {
            precondition(pipe.head > slot, "revert(\(n)) goes past the start of the PIPE iterator")
            var buffer = pipe.buffer(at: pipe.head - 1)
            let step = min(remaining, buffer.length)
            buffer.length -= step
            remaining -= step
            if buffer.length == 0 {
                pipe.popNewest()
            } else {
                pipe.setBuffer(buffer, at: pipe.head - 1)
            }
        }
    }
}

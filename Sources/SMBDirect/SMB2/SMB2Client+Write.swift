import IterExtract
import RDMASGE

extension SMB2Client {
    /// Writes the bytes of `data` to `file` from `offset` on, in WRITE requests of up
    /// to ``maxWriteSize`` bytes, each inline or through the RDMA channel by its size,
    /// up to ``depth`` of them in flight, calling `progress` with the bytes the server
    /// has acknowledged so far after each final response. Advances `data` past the
    /// bytes sent.
    ///
    /// When a request fails, the requests in flight are answered before the error is
    /// thrown (their registrations released), so that the session goes on, unless the
    /// failure ends it.
    ///
    /// - Returns: The bytes written.
    /// - Throws: ``SMB2Error/invalidArgument(_:)``, before anything is sent and with
    ///   `data` where it was, when the range written would end past `UInt64.max` or
    ///   ``maxDescriptors`` is outside 1...4,095, and, with `data` just past the bytes
    ///   sent, when `data` reaches a hole (an XARRAY index with no folio: the bytes
    ///   before it are written, none after); ``SMB2Error/status(_:command:)`` when the
    ///   server refused a request; ``SMB2Error/shortWrite(requested:written:)``
    ///   when the server wrote less than a request carried, and
    ///   ``SMB2Error/unexpectedResponse(_:)`` when it claims more, answers a request
    ///   not in flight, or grants credits past ``maxCredits`` (the session ends then).
    @discardableResult
    public func write(_ data: inout IOIterator, to file: SMB2FileID, at offset: UInt64 = 0,
                      progress: (Int) -> Void = { _ in }) throws(SMB2Error) -> Int {
        guard (1...SMB2WriteRequest.maxDescriptors).contains(maxDescriptors) else {
            throw .invalidArgument("\(maxDescriptors) buffer descriptors per WRITE (1...\(SMB2WriteRequest.maxDescriptors) fit)")
        }
        guard UInt64(data.count) <= UInt64.max - offset else {
            throw .invalidArgument("\(data.count) bytes at offset \(offset) end past the largest file offset")
        }
        // An inline WRITE is one SMB Direct message: its data fits what one message carries.
        // A signing session sends every WRITE inline (maxWriteSize fits one message then).
        let inlineLimit = usesRDMAChannel
            ? min(inlineThreshold, (connection.limits?.maxFragmentedSendSize ?? 0) - SMB2WriteRequest.dataOffset) : .max
        var sent = 0
        var written = 0
        try pipeline(.write, maxSize: maxWriteSize, remaining: { data.count }) { (chunk) throws(SMB2Error) in
            let at = offset + UInt64(sent)
            sent += chunk > inlineLimit
                ? try postThroughChannel(&data, chunk: chunk, to: file, at: at)
                : try postInline(&data, chunk: chunk, to: file, at: at)
        } complete: { (answer) throws(SMB2Error) in
            guard answer.status == .success else { throw .status(answer.status, command: .write) }
            guard answer.count == answer.length else { throw .shortWrite(requested: answer.length, written: answer.count) }
            written += answer.length
            progress(written)
        }
        return written
    }

    /// Sends an inline WRITE of up to `chunk` bytes of `data` (fewer when a hole
    /// stops them) and advances `data` past them; returns the bytes sent.
    private func postInline(_ data: inout IOIterator, chunk: Int, to file: SMB2FileID, at offset: UInt64) throws(SMB2Error) -> Int {
        let chunk = try Self.contiguous(data, upTo: chunk)
        var piece = data
        piece.truncate(chunk)
        let before = piece.count
        try post(.write, charge: Self.creditCharge(chunk), offset: offset, length: chunk, registration: nil, payload: &piece) {
            SMB2WriteRequest(fileID: file, offset: offset, length: chunk, descriptors: []).encode(into: &$0)
        }
        data.advance(before - piece.count)
        statistics.inlineWrites += 1
        statistics.inlineBytes += chunk
        return chunk
    }

    /// Registers up to `chunk` bytes of `data`, sends a WRITE that describes them,
    /// and advances `data` past them; returns the bytes registered. The registration
    /// goes with the request into the table of requests in flight.
    private func postThroughChannel(_ data: inout IOIterator, chunk: Int, to file: SMB2FileID,
                                    at offset: UInt64) throws(SMB2Error) -> Int {
        let registration = try register(&data, chunk: chunk)
        let length = registration.byteCount
        let request = SMB2WriteRequest(fileID: file, offset: offset, length: length, descriptors: registration.descriptors)
        var nothing = IOIterator(source: UnsafeRawBufferPointer(start: nil, count: 0))
        try post(.write, charge: Self.creditCharge(length), offset: offset, length: length, registration: registration,
                 payload: &nothing) {
            request.encode(into: &$0)
        }
        statistics.rdmaWrites += 1
        statistics.rdmaBytes += length
        statistics.bufferDescriptors += request.descriptors.count
        return length
    }
}

import IterExtract
import RDMASGE

extension SMB2Client {
    /// Reads `file` from `offset` on into `destination`, until `destination` is full or
    /// the file ends, in READ requests of up to ``maxReadSize`` bytes, up to ``depth``
    /// of them in flight, calling `progress` with the bytes received so far after each
    /// final response. A READ of more than ``inlineThreshold`` bytes goes through the
    /// RDMA channel: the destination's memory is registered for the server's RDMA
    /// WRITE (the pages of user memory pinned) until the request's final response;
    /// a smaller one gets its data in the response, copied into the destination.
    ///
    /// The file ends where a response returns fewer bytes than its request asked for,
    /// or `STATUS_END_OF_FILE`: no request is sent after that, those in flight are
    /// answered, and the bytes before the end are the result. As requests are answered
    /// in any order, `destination` is moved only at the end: just past the bytes read
    /// (bytes past them may have been written by the server); after an error it is
    /// where it was.
    ///
    /// Mirrors the kernel's cifs client (`smb2_async_readv` through `smbd_register_mr`).
    ///
    /// - Returns: The bytes read: fewer than `destination` holds when the file ends first.
    /// - Throws: ``SMB2Error/invalidArgument(_:)``, before anything is sent, when
    ///   `destination` is a source or a PIPE, the range would end past `UInt64.max`,
    ///   ``maxDescriptors`` is outside 1...4,095, or `destination` reaches a hole (an
    ///   XARRAY index with no folio); ``SMB2Error/status(_:command:)`` when the server
    ///   refused a request; ``SMB2Error/unexpectedResponse(_:)`` when a response counts
    ///   more bytes than its request asked for (DataRemaining past the registered
    ///   memory, or DataLength past the request), answers a request not in flight, or
    ///   grants credits past ``maxCredits``, and ``SMB2Error/malformed(_:)`` when
    ///   inline data lies outside the response: the session ends then, the connection
    ///   closed before any registration is released.
    @discardableResult
    public func read(from file: SMB2FileID, at offset: UInt64 = 0, into destination: inout IOIterator,
                     progress: (Int) -> Void = { _ in }) throws(SMB2Error) -> Int {
        guard (1...SMB2WriteRequest.maxDescriptors).contains(maxDescriptors) else {
            throw .invalidArgument("\(maxDescriptors) buffer descriptors per READ (1...\(SMB2WriteRequest.maxDescriptors) fit)")
        }
        guard destination.direction == .destination, destination.kind != .pipe else {
            throw .invalidArgument("a READ fills a destination iterator that is not a PIPE")
        }
        guard UInt64(destination.count) <= UInt64.max - offset else {
            throw .invalidArgument("\(destination.count) bytes at offset \(offset) end past the largest file offset")
        }
        // An inline READ's response is one SMB Direct message: its data fits what one message carries.
        // A signing session asks for every READ inline (maxReadSize fits one message then).
        let inlineLimit = usesRDMAChannel
            ? min(inlineThreshold, connection.configuration.maxFragmentedSize - SMB2ReadResponse.dataOffset) : .max
        let origin = destination
        var posted = 0
        var received = 0
        // Where the file ends, relative to `offset`, once a response showed it.
        var end: Int?
        do throws(SMB2Error) {
            try pipeline(.read, maxSize: maxReadSize, remaining: { end == nil ? destination.count : 0 }) { (chunk) throws(SMB2Error) in
                let at = offset + UInt64(posted)
                posted += chunk > inlineLimit
                    ? try postThroughChannel(&destination, chunk: chunk, from: file, at: at)
                    : try postInline(&destination, chunk: chunk, from: file, at: at)
            } complete: { (answer) throws(SMB2Error) in
                guard answer.status == .success || answer.status == .endOfFile else { throw .status(answer.status, command: .read) }
                if let (target, data) = answer.inlineRead {
                    var target = target
                    answer.reply.withUnsafeBytes { _ = target.copy(from: UnsafeRawBufferPointer(rebasing: $0[data])) }
                }
                if answer.count < answer.length {
                    end = min(end ?? .max, Int(answer.offset - offset) + answer.count)
                }
                received += answer.count
                progress(received)
            }
        } catch {
            destination = origin
            throw error
        }
        let read = min(end ?? posted, posted)
        destination = origin
        destination.advance(read)
        return read
    }

    /// Sends an inline READ of up to `chunk` bytes (fewer when a hole in `destination`
    /// stops them) and advances `destination` past them; returns the bytes asked for.
    /// The request keeps the destination's piece, into which its data is copied.
    private func postInline(_ destination: inout IOIterator, chunk: Int, from file: SMB2FileID,
                            at offset: UInt64) throws(SMB2Error) -> Int {
        let chunk = try Self.contiguous(destination, upTo: chunk)
        var piece = destination
        piece.truncate(chunk)
        var nothing = IOIterator(source: UnsafeRawBufferPointer(start: nil, count: 0))
        try post(.read, charge: Self.creditCharge(chunk), offset: offset, length: chunk, registration: nil,
                 inlineDestination: piece, payload: &nothing) {
            SMB2ReadRequest(fileID: file, offset: offset, length: chunk, descriptors: []).encode(into: &$0)
        }
        destination.advance(chunk)
        statistics.inlineReads += 1
        statistics.inlineReadBytes += chunk
        return chunk
    }

    /// Registers up to `chunk` bytes of `destination` for the server's RDMA WRITE,
    /// sends a READ that describes them, and advances `destination` past them; returns
    /// the bytes registered. The registration goes with the request into the table of
    /// requests in flight.
    private func postThroughChannel(_ destination: inout IOIterator, chunk: Int, from file: SMB2FileID,
                                    at offset: UInt64) throws(SMB2Error) -> Int {
        let registration = try register(&destination, chunk: chunk)
        let length = registration.byteCount
        let request = SMB2ReadRequest(fileID: file, offset: offset, length: length, descriptors: registration.descriptors)
        var nothing = IOIterator(source: UnsafeRawBufferPointer(start: nil, count: 0))
        try post(.read, charge: Self.creditCharge(length), offset: offset, length: length, registration: registration,
                 payload: &nothing) {
            request.encode(into: &$0)
        }
        statistics.rdmaReads += 1
        statistics.rdmaReadBytes += length
        statistics.readBufferDescriptors += request.descriptors.count
        return length
    }
}

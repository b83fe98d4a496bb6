#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import IterExtract
import RDMASGE

extension SMBDirectConnection {
    // MARK: The requester's side: exposing memory

    /// Registers up to `maxSize` bytes of `iterator` for the peer to access by RDMA
    /// and describes them with buffer descriptors, at most `maxDescriptors` of them
    /// (the memory may end up shorter than `maxSize`: check
    /// ``SMBDirectRegistration/byteCount``). The iterator advances past the bytes registered.
    ///
    /// A source iterator is exposed for RDMA READ (the data of an SMB2 WRITE), a
    /// destination for RDMA WRITE (the buffer of an SMB2 READ). Each descriptor has a
    /// region of its own (`ExactRegistrations`) that covers exactly the bytes it
    /// describes, not a byte before or after, and allows only the peer's access the
    /// direction needs; the region (and, for a user-backed iterator, the pins on its
    /// pages) is held until ``release(_:)``, which deregisters it.
    ///
    /// Memory that is virtually contiguous is one descriptor, however many folios or
    /// segments hold it: a server may charge for every descriptor (ksmbd takes at
    /// least one of its few rw credits for each). For user memory (UBUF, IOVEC) a
    /// descriptor is one segment's contiguous run.
    ///
    /// Mirrors the kernel's `smbd_register_mr`, which maps exactly the I/O's bytes
    /// with a fast-registration MR.
    ///
    /// - Throws: ``SMBDirectError/extraction(_:)``, leaving no trace.
    public func register(
        _ iterator: inout IOIterator, maxSize: Int, maxDescriptors: Int = 8, ledger: PinLedger = .shared
    ) throws(SMBDirectError) -> SMBDirectRegistration {
        precondition(maxSize > 0 && maxDescriptors > 0, "a registration describes at least one byte")
        let isPeerWritable = iterator.direction == .destination
        let registrations = isPeerWritable ? peerWritableRegistrations : peerReadableRegistrations
        var sges: [SGE] = []
        sges.reserveCapacity(maxDescriptors)
        let bytes: Int
        do {
            if iterator.extractionWillPin {
                bytes = try iterator.extract(maxSize: maxSize, into: &sges, maxSGEs: maxDescriptors, keys: registrations, ledger: ledger)
            } else {
                bytes = try Self.extractRuns(of: &iterator, maxSize: maxSize, into: &sges, maxRuns: maxDescriptors,
                                             keys: registrations)
            }
        } catch {
            throw .extraction(error)
        }
        let descriptors = sges.map { sge in
            BufferDescriptorV1(offset: sge.address, token: registrations.region(lkey: sge.lkey)!.rkey, length: sge.length)
        }
        return SMBDirectRegistration(descriptors: descriptors, byteCount: bytes, isPeerWritable: isPeerWritable,
                                     sges: sges, retention: iterator.retention(keys: registrations, ledger: ledger))
    }

    /// Extracts up to `maxSize` bytes of `iterator`'s memory, which extraction does not
    /// pin (pages the caller holds: KVEC, BVEC, XARRAY, FOLIOQ), as one SGE per
    /// virtually contiguous run, at most `maxRuns` of them, and advances it past them.
    ///
    /// Folio by folio, single pages that sit one after another would each be a
    /// descriptor, and a server charges for each: ksmbd takes at least one of its
    /// few rw credits per descriptor. Joined, they are one, as the one
    /// fast-registration MR per I/O of the kernel's client is.
    private static func extractRuns(of iterator: inout IOIterator, maxSize: Int, into sges: inout [SGE], maxRuns: Int,
                                    keys: ExactRegistrations<Domain>) throws(RDMAError) -> Int {
        var runs: [iovec] = []
        runs.reserveCapacity(maxRuns)
        let bytes = iterator.walk(maxBytes: maxSize) { piece in
            if let last = runs.last, UInt(bitPattern: last.iov_base) + UInt(last.iov_len) == piece.address {
                runs[runs.count - 1].iov_len += piece.length
                return piece.length
            }
            guard runs.count < maxRuns else { return 0 }
            runs.append(iovec(iov_base: UnsafeMutableRawPointer(bitPattern: piece.address), iov_len: piece.length))
            return piece.length
        }
        guard bytes > 0 else { return 0 }
        let extracted = try runs.withUnsafeBufferPointer { (list) throws(RDMAError) -> Int in
            // The runs are memory the iterator described: they are valid KVEC segments.
            var joined = try! IOIterator(kvecs: list, direction: iterator.direction)
            return try joined.extract(maxSize: bytes, into: &sges, maxSGEs: maxRuns, keys: keys)
        }
        precondition(extracted == bytes, "each run of \(runs.count) is one SGE")
        iterator.advance(bytes)
        return bytes
    }

    /// Gives back what a registration took and deregisters its regions: when this
    /// returns, the rkeys the peer was given open nothing. Call it once the peer has
    /// answered the request that carried the descriptors (or the connection ended).
    ///
    /// Mirrors the kernel's `smbd_deregister_mr` (local invalidation of the MR).
    public func release(_ registration: consuming SMBDirectRegistration) {
        // The registration's deinit gives back what it holds.
        _ = consume registration
    }

    // MARK: The responder's side: moving the data

    /// Reads the memory `descriptors` describe, in order, into `destination` (which
    /// region `lkey` covers with local write access) by RDMA READ, and waits for the
    /// reads to finish. This is how a server takes the data of an SMB2 WRITE sent
    /// through the RDMA channel.
    public func read(from descriptors: [BufferDescriptorV1], into destination: UnsafeMutableRawBufferPointer,
                     lkey: UInt32) throws(SMBDirectError) {
        try transfer(.rdmaRead, descriptors, local: UnsafeRawBufferPointer(destination), lkey: lkey)
        statistics.rdmaReadBytes += descriptors.reduce(0) { $0 + Int($1.length) }
    }

    /// Writes `source` (which region `lkey` covers) into the memory `descriptors`
    /// describe, in order, by RDMA WRITE, and waits for the writes to finish. This is
    /// how a server returns the data of an SMB2 READ through the RDMA channel.
    public func write(_ source: UnsafeRawBufferPointer, lkey: UInt32, to descriptors: [BufferDescriptorV1]) throws(SMBDirectError) {
        try transfer(.rdmaWrite, descriptors, local: source, lkey: lkey)
        statistics.rdmaWriteBytes += descriptors.reduce(0) { $0 + Int($1.length) }
    }

    private func transfer(_ opcode: SendOpcode, _ descriptors: [BufferDescriptorV1], local: UnsafeRawBufferPointer,
                          lkey: UInt32) throws(SMBDirectError) {
        try checkUsable()
        guard state == .connected, let limits else { throw .notConnected }
        let total = descriptors.reduce(0) { $0 + Int($1.length) }
        guard total <= limits.maxReadWriteSize else {
            throw fail(.malformed(.transferTooLong(length: total, limit: limits.maxReadWriteSize)))
        }
        guard total <= local.count else { throw .descriptorsExceedBuffer(length: total, bufferSize: local.count) }
        var offset = 0
        for descriptor in descriptors {
            if rdmaInFlight >= configuration.maxRDMAOperations {
                try wait(for: "an RDMA operation to finish") { rdmaInFlight < configuration.maxRDMAOperations }
            }
            let slot = rdmaSlotInFlight.firstIndex(of: false)!
            var sge = SGE(address: UInt64(UInt(bitPattern: local.baseAddress) + UInt(offset)), length: descriptor.length, lkey: lkey)
            do {
                try withUnsafePointer(to: &sge) { (pointer) throws(VerbsError) in
                    try queuePair.postSend(SendWorkRequest(
                        id: Self.workID(.rdma, slot), opcode: opcode, sges: UnsafeBufferPointer(start: pointer, count: 1),
                        remoteAddress: descriptor.offset, rkey: descriptor.token))
                }
            } catch {
                throw fail(.verbs(error))
            }
            rdmaInFlight += 1
            rdmaSlotInFlight[slot] = true
            offset += Int(descriptor.length)
        }
        try wait(for: "the RDMA operations to finish") { rdmaInFlight == 0 }
    }
}

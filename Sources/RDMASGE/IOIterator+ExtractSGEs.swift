import IterExtract

extension IOIterator {
    /// Describes up to `maxSize` bytes of the iterator as SGEs appended to `sges`, at
    /// most `maxSGEs` of them, each carrying the lkey that `keys` gives for its memory,
    /// and advances past the bytes described.
    ///
    /// Each natural piece of the iterator (the buffer, each segment or ``BioVec``, each
    /// folio) is split where it crosses from one region to the next; pieces that are
    /// virtually contiguous under one lkey merge into one SGE of up to `UInt32.max`
    /// bytes. The result therefore has at most as many SGEs as the kernel's
    /// granularity (one per BVEC element, per page of a KVEC, per folio of a FOLIOQ).
    /// A receive target or RDMA READ target (a destination iterator) needs regions
    /// with ``AccessFlags/localWrite``. An XARRAY iterator stops at the first hole.
    ///
    /// Retention, per kind:
    /// - UBUF, IOVEC: every page of every SGE is **pinned** in `ledger`.
    /// - KVEC, BVEC, XARRAY, FOLIOQ: no pins; the memory's owner keeps it alive.
    ///
    /// Every SGE also holds one reference on its region in `keys`, for every kind: a
    /// resolver that registers on demand (``MRCache``) must not evict or absorb a
    /// region while requests name its lkey. ``SingleKeyResolver`` and ``RegionTable``
    /// count nothing, so with them non-user kinds take nothing at all. Give everything
    /// back once the requests have completed, with
    /// ``release(extractedSGEs:keys:ledger:)`` or by releasing the ``WorkRequestPlan``
    /// the SGEs belong to.
    ///
    /// Appending to an array whose reserved capacity suffices does not allocate.
    /// `maxSize` or `maxSGEs` of 0 returns 0 and changes nothing.
    ///
    /// Mirrors the kernel's `smb_extract_iter_to_rdma`, which refuses user-backed
    /// kinds and XARRAY and gives every SGE one device-wide lkey.
    ///
    /// - Returns: The bytes described; the iterator advanced by exactly this many.
    /// - Throws: On error the iterator, `sges`, the ledger and every region reference
    ///   are as they were: ``RDMAError/notExtractable(_:)`` for DISCARD and for PIPE
    ///   (a pipe's pages do not exist until data is written into them, so there is no
    ///   memory to receive into; receive into other memory and copy into the pipe);
    ///   ``RDMAError/unregisteredMemory(address:)`` for memory no key covers;
    ///   ``RDMAError/accessDenied(address:lkey:missing:)``;
    ///   ``RDMAError/addressOverflow(address:length:)`` for a user range that wraps;
    ///   ``RDMAError/pinLimitExceeded(requested:available:)``;
    ///   ``RDMAError/registrationFailed(_:)`` from an MR cache.
    public mutating func extract<Keys: KeyResolver>(
        maxSize: Int, into sges: inout [SGE], maxSGEs: Int, keys: Keys, ledger: PinLedger = .shared
    ) throws(RDMAError) -> Int {
        precondition(maxSize >= 0, "maxSize is not negative")
        precondition(maxSGEs >= 0, "maxSGEs is not negative")
        guard kind != .discard, kind != .pipe else { throw .notExtractable(kind) }
        let limit = Swift.min(maxSize, count)
        if limit == 0 || maxSGEs == 0 { return 0 }

        let start = sges.count
        let pins = extractionWillPin
        var builder = SGEBuilder(start: start, maxSGEs: maxSGEs, access: direction == .destination ? .localWrite : [])
        let bytes: Int
        do {
            bytes = try walk(maxBytes: limit, holes: .stop) { (range) throws(RDMAError) -> Int in
                if pins, range.address.addingReportingOverflow(UInt(range.length)).overflow {
                    throw .addressOverflow(address: range.address, length: range.length)
                }
                return try builder.append(range, to: &sges, keys: keys)
            }
            if pins { try pin(sges[start...], ledger: ledger) }
        } catch {
            for sge in sges[start...] { keys.release(lkey: sge.lkey) }
            sges.removeSubrange(start...)
            throw error
        }
        advance(bytes)
        return bytes
    }

    /// Releases what ``extract(maxSize:into:maxSGEs:keys:ledger:)`` took for `sges`:
    /// each SGE's region reference, and for a user-backed iterator its pages' pins.
    public func release<Keys: KeyResolver, C: Collection<SGE>>(extractedSGEs sges: C, keys: Keys, ledger: PinLedger = .shared) {
        keys.release(extractedSGEs: sges, pinned: extractionWillPin, ledger: ledger)
    }

    /// Pins the pages of every SGE, all or none, in one ledger call.
    private func pin(_ sges: ArraySlice<SGE>, ledger: PinLedger) throws(RDMAError) {
        do {
            try ledger.pin(sges.lazy.flatMap(\.pages), count: sges.reduce(0) { $0 + $1.pages.count })
        } catch {
            guard case .pinLimitExceeded(let requested, let available) = error else {
                preconditionFailure("pinning failed with \(error)")
            }
            throw .pinLimitExceeded(requested: requested, available: available)
        }
    }
}

extension SGE {
    /// The pages the SGE's bytes occupy.
    @inlinable
    public var pages: PagesOfRange { MemoryRange(address: UInt(address), length: Int(length)).pages }
}

/// The running state of one extraction to SGEs: the open SGE, how far its region
/// covers, and the room left.
struct SGEBuilder {
    let start: Int
    let maxSGEs: Int
    let access: AccessFlags
    /// The end of the open (last) SGE and of its region, when there is an open SGE.
    var openEnd: UInt = 0
    var coverageEnd: UInt = 0
    var isOpen = false

    init(start: Int, maxSGEs: Int, access: AccessFlags) {
        self.start = start
        self.maxSGEs = maxSGEs
        self.access = access
    }

    /// Describes as much of `range` as fits; returns the bytes taken.
    mutating func append<Keys: KeyResolver>(_ range: MemoryRange, to sges: inout [SGE], keys: Keys) throws(RDMAError) -> Int {
        var taken = 0
        while taken < range.length {
            let address = range.address &+ UInt(taken)
            let left = range.length - taken
            if isOpen, address == openEnd, address < coverageEnd, sges[sges.count - 1].length < UInt32.max {
                // Contiguous with the open SGE and inside its region: grow it, no lookup.
                taken += grow(&sges, by: Swift.min(left, Int(coverageEnd - address)))
                continue
            }
            let contiguous = isOpen && address == openEnd && sges[sges.count - 1].length < UInt32.max
            let full = sges.count - start >= maxSGEs
            if full && !contiguous { break }
            let resolution = try keys.resolve(MemoryRange(address: address, length: left), access: access, retaining: true)
            let covered = Swift.min(left, Int(resolution.coverage.upperBound - address))
            if contiguous, sges[sges.count - 1].lkey == resolution.lkey {
                // The next region has the same key: one SGE, one reference.
                keys.release(lkey: resolution.lkey)
                coverageEnd = resolution.coverage.upperBound
                taken += grow(&sges, by: covered)
                continue
            }
            guard !full else {
                keys.release(lkey: resolution.lkey)
                break
            }
            let length = Swift.min(covered, Int(UInt32.max))
            sges.append(SGE(address: UInt64(address), length: UInt32(length), lkey: resolution.lkey))
            isOpen = true
            openEnd = address &+ UInt(length)
            coverageEnd = resolution.coverage.upperBound
            taken += length
        }
        return taken
    }

    /// Grows the open SGE by up to `n` bytes, within the SGE length limit.
    private mutating func grow(_ sges: inout [SGE], by n: Int) -> Int {
        let last = sges.count - 1
        let step = Swift.min(n, Int(UInt32.max - sges[last].length))
        sges[last].length += UInt32(step)
        openEnd &+= UInt(step)
        return step
    }
}

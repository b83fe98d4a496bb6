import IterExtract

/// Extraction to RDMA SGEs: an iterator's memory described as scatter/gather elements
/// that carry the local keys of the memory regions covering it.
extension IOIterator {
    /// Describes up to `maxSize` bytes of the iterator as SGEs appended to `sges`, at
    /// most `maxSGEs` of them, each carrying the lkey that `keys` gives for its memory,
    /// and advances past the bytes described.
    ///
    /// Each natural piece of the iterator (the buffer, each segment or `BioVec`, each
    /// folio) is split where it crosses from one region to the next; pieces that are
    /// virtually contiguous under one lkey merge into one SGE of up to `UInt32.max`
    /// bytes. The result therefore has at most as many SGEs as the kernel's
    /// granularity (one per BVEC element, per page of a KVEC, per folio of a FOLIOQ).
    /// A receive target or RDMA READ target (a destination iterator) needs regions
    /// with `AccessFlags.localWrite`. An XARRAY iterator stops at the first hole.
    ///
    /// Retention, per kind:
    /// - UBUF, IOVEC: every page of every SGE is **pinned** in `ledger`.
    /// - KVEC, BVEC, XARRAY, FOLIOQ: no pins; the memory's owner keeps it alive.
    ///
    /// Every SGE also holds one reference on its region in `keys`, for every kind: a
    /// resolver that registers on demand (``MRCache``) must not evict or absorb a
    /// region while requests name its lkey. ``SingleKeyResolver`` and ``RegionTable``
    /// count nothing, so with them non-user kinds take nothing at all. An MR cache is
    /// asked once per region (it takes the references of a region's SGEs in one step,
    /// ``KeyResolver/retainsInBatches``), and a lookup asks it to cover the segments
    /// that follow as far as their pages touch. Give everything
    /// back once the requests have completed, with
    /// ``release(extractedSGEs:keys:ledger:)`` or by releasing the ``WorkRequestPlan``
    /// the SGEs belong to.
    ///
    /// Appending to an array whose reserved capacity suffices does not allocate.
    /// Keeps the extraction contract stated on
    /// `IOIterator.extractionLimit(maxSize:capacity:acceptsPipe:)`:
    /// `maxSize` is clamped to `count` and `maxReadWriteCount`; when it or
    /// `maxSGEs` is 0 the call returns 0 and changes nothing (DISCARD and PIPE are
    /// refused first).
    ///
    /// Mirrors the kernel's `smb_extract_iter_to_rdma`, which refuses user-backed
    /// kinds and XARRAY and gives every SGE one device-wide lkey.
    ///
    /// - Returns: The bytes described; the iterator advanced by exactly this many.
    /// - Throws: On error the iterator, `sges`, the ledger and every region reference
    ///   are as they were: ``RDMAError/iterator(_:)`` wrapping
    ///   `IOIteratorError.notExtractable(_:)` for DISCARD and for PIPE
    ///   (a pipe's pages do not exist until data is written into them, so there is no
    ///   memory to receive into; receive into other memory and copy into the pipe),
    ///   `IOIteratorError.pipeIsDestinationOnly` for a PIPE source, or
    ///   `IOIteratorError.pinLimitExceeded(requested:available:)`;
    ///   ``RDMAError/unregisteredMemory(address:)`` for memory no key covers;
    ///   ``RDMAError/accessDenied(address:lkey:missing:)``;
    ///   ``RDMAError/registrationFailed(_:)`` from an MR cache.
    // Specialised per resolver, never inlined: the whole segment loop would otherwise
    // land in every caller and crowd out the caller's own inlining.
    @inlinable @inline(never)
    public mutating func extract<Keys: KeyResolver>(
        maxSize: Int, into sges: inout [SGE], maxSGEs: Int, keys: Keys, ledger: PinLedger = .shared
    ) throws(RDMAError) -> Int {
        let limit = try sgeExtractionLimit(maxSize: maxSize, capacity: maxSGEs)
        if limit == 0 { return 0 }
        let start = sges.count
        var builder = SGEBuilder(keys: keys, access: direction == .destination ? .localWrite : [], maxSGEs: maxSGEs)
        // The iterator moves only when everything succeeded.
        let willPin = extractionWillPin
        return try withExtractionCursor { (cursor) throws(RDMAError) -> Int in
            var bytes = 0
            do throws(RDMAError) {
                repeat {
                    // Fill the array's spare capacity; grow it only when that is used up.
                    let spare = sges.capacity - sges.count
                    let room = spare > 0 ? spare : Swift.min(Swift.max(sges.capacity, 16), maxSGEs - (sges.count - start))
                    try sges.append(addingCapacity: room) { (output) throws(RDMAError) in
                        bytes += try builder.fill(&output, from: &cursor, limit: limit - bytes)
                    }
                } while builder.needsRoom
                builder.close(into: &sges)
                if willPin { try Self.pin(sges[start...], pageCount: builder.pageCount, ledger: ledger) }
            } catch {
                builder.releaseReferences(written: sges[start...])
                sges.removeSubrange(start...)
                throw error
            }
            return bytes
        }
    }

    /// Describes up to `maxSize` bytes of the iterator as SGEs written to the start of
    /// `buffer`, at most `buffer.count` of them, exactly as
    /// ``extract(maxSize:into:maxSGEs:keys:ledger:)`` appends them to an array, and
    /// advances past the bytes described. For owners of SGE storage (a work-request
    /// plan) that fill it in place; never allocates.
    ///
    /// - Returns: The bytes described and the SGEs written.
    /// - Throws: As ``extract(maxSize:into:maxSGEs:keys:ledger:)``; on error the iterator,
    ///   the ledger and every region reference are as they were (`buffer` may have been written).
    @inlinable
    package mutating func extract<Keys: KeyResolver>(
        maxSize: Int, into buffer: UnsafeMutableBufferPointer<SGE>, keys: Keys, ledger: PinLedger
    ) throws(RDMAError) -> (bytes: Int, sgeCount: Int) {
        let limit = try sgeExtractionLimit(maxSize: maxSize, capacity: buffer.count)
        if limit == 0 { return (0, 0) }
        var builder = SGEBuilder(keys: keys, access: direction == .destination ? .localWrite : [], maxSGEs: buffer.count)
        let willPin = extractionWillPin
        return try withExtractionCursor { (cursor) throws(RDMAError) -> (bytes: Int, sgeCount: Int) in
            var output = OutputSpan(buffer: buffer, initializedCount: 0)
            var bytes = 0
            let failure: RDMAError?
            do throws(RDMAError) {
                // The output holds maxSGEs SGEs, so one fill closes the last SGE too.
                bytes = try builder.fill(&output, from: &cursor, limit: limit)
                failure = nil
            } catch {
                failure = error
            }
            let written = UnsafeMutableBufferPointer(rebasing: buffer[..<output.finalize(for: buffer)])
            do throws(RDMAError) {
                if let failure { throw failure }
                if willPin { try Self.pin(written, pageCount: builder.pageCount, ledger: ledger) }
            } catch {
                builder.releaseReferences(written: written)
                throw error
            }
            return (bytes, written.count)
        }
    }

    /// Releases what ``extract(maxSize:into:maxSGEs:keys:ledger:)`` took for `sges`:
    /// each SGE's region reference, and for a user-backed iterator its pages' pins.
    public func release<Keys: KeyResolver, C: Collection<SGE>>(extractedSGEs sges: C, keys: Keys, ledger: PinLedger = .shared) {
        keys.releaseExtracted(sges, pins: extractionWillPin ? ledger : nil)
    }

    /// ``extractionLimit(maxSize:capacity:acceptsPipe:)`` for SGEs, which take no PIPE.
    @inlinable
    func sgeExtractionLimit(maxSize: Int, capacity: Int) throws(RDMAError) -> Int {
        do {
            return try extractionLimit(maxSize: maxSize, capacity: capacity, acceptsPipe: false)
        } catch {
            throw .iterator(error)
        }
    }

    /// Pins the pages of every SGE, all or none, in one ledger call.
    @usableFromInline
    static func pin(_ sges: ArraySlice<SGE>, pageCount: Int, ledger: PinLedger) throws(RDMAError) {
        try pinPages(of: sges, pageCount: pageCount, ledger: ledger)
    }

    /// Pins the pages of every SGE in `sges`, all or none, in one ledger call.
    @usableFromInline
    static func pin(_ sges: UnsafeMutableBufferPointer<SGE>, pageCount: Int, ledger: PinLedger) throws(RDMAError) {
        try pinPages(of: sges, pageCount: pageCount, ledger: ledger)
    }

    @inline(__always)
    private static func pinPages<C: Collection<SGE>>(of sges: C, pageCount: Int, ledger: PinLedger) throws(RDMAError) {
        do {
            try ledger.pin(sges.lazy.flatMap(\.pages), count: pageCount)
        } catch {
            throw .iterator(error)
        }
    }
}

/// The pages behind an SGE, for releasing the pins that extraction took.
extension SGE {
    /// The pages the SGE's bytes occupy.
    @inlinable
    public var pages: PagesOfRange { MemoryRange(address: UInt(address), length: Int(length)).pages }

    /// The number of pages the SGE's bytes occupy (`pages.count`, in straight-line
    /// arithmetic, without a branch: summing it over an array is a tight loop).
    @inlinable
    public var pageCount: Int {
        let start = UInt(truncatingIfNeeded: address)
        let last = start &+ UInt(length) &+ pageMask
        // An empty SGE counts from where it ends, so that it counts no page.
        let first = length == 0 ? last : start
        return Int(truncatingIfNeeded: last &>> pageShift &- first &>> pageShift)
    }

    /// The pages all of `sges` occupy together, counted SGE by SGE (``pageCount``) in
    /// one pass over their memory.
    @inlinable
    public static func pageCount<C: Collection<SGE>>(of sges: C) -> Int {
        if let count = sges.withContiguousStorageIfAvailable({ buffer in
            var count = 0
            for sge in buffer { count &+= sge.pageCount }
            return count
        }) {
            return count
        }
        var count = 0
        for sge in sges { count &+= sge.pageCount }
        return count
    }
}

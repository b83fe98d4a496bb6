import IterExtract

/// The running state of one extraction to SGEs: the open SGE, the region it is in,
/// and the room left.
///
/// The open (last) SGE stays in the builder, as plain scalars, until a piece that
/// cannot join it arrives, so that growing it costs no memory access; it is written
/// when the next SGE opens or the extraction finishes. A resolver that does not
/// count references, or takes them in batches (``KeyResolver/retainsInBatches``), is
/// asked once per region: later pieces inside the region's coverage reuse its answer.
/// For a batching resolver the builder counts the SGEs opened on a reused answer and
/// takes their references in one ``KeyResolver/retain(lkey:count:)`` when the region
/// changes or a round of extraction ends (``settleReferences()``), so that every SGE
/// holds exactly one reference, as if each had been looked up.
@usableFromInline
struct SGEBuilder<Keys: KeyResolver> {
    @usableFromInline let keys: Keys
    @usableFromInline let access: AccessFlags
    /// The most SGEs the extraction may produce.
    @usableFromInline let maxSGEs: Int
    /// Whether an answer may serve later pieces in its coverage (the resolver counts
    /// nothing, or takes references in batches).
    @usableFromInline let reusesResolutions: Bool
    /// Whether lookups take references (the resolver counts, in batches or not).
    @usableFromInline let countsReferences: Bool
    /// SGEs opened so far, the open one included.
    @usableFromInline var opened = 0
    /// The SGEs opened so far that hold a region reference (of a counting resolver): the
    /// rest, `opened - referenced`, are the latest ones, opened on the remembered answer.
    @usableFromInline var referenced = 0
    /// Where the next lookup would like its region to end, when the pieces that follow
    /// touch the current one's pages (a batching resolver registers that much on a
    /// miss); 0 when unknown. Set by ``appendSegments(_:offset:limit:to:)``.
    @usableFromInline var lookaheadEnd: UInt = 0
    /// Whether an SGE is open and not yet written.
    @usableFromInline var isOpen = false
    /// The open SGE: its address, length and key.
    @usableFromInline var openAddress: UInt = 0
    @usableFromInline var openLength = 0
    @usableFromInline var openKey: UInt32 = 0
    /// The last answer from the resolver: its key and coverage.
    @usableFromInline var lkey: UInt32 = 0
    @usableFromInline var coverageStart: UInt = 1
    @usableFromInline var coverageEnd: UInt = 0
    /// The pages of the SGEs written so far.
    @usableFromInline var pageCount = 0
    /// Set when the output had no room for an SGE that had to be written.
    @usableFromInline var needsRoom = false

    @inlinable
    init(keys: Keys, access: AccessFlags, maxSGEs: Int) {
        self.keys = keys
        self.access = access
        self.maxSGEs = maxSGEs
        countsReferences = keys.retainsRegions
        reusesResolutions = !countsReferences || keys.retainsInBatches
    }

    /// Takes the references of the SGEs opened on the remembered answer since its lookup
    /// (or the last settlement), in one call on a batching resolver.
    @inlinable
    mutating func settleReferences() {
        let pending = opened &- referenced
        guard countsReferences, pending > 0 else { return }
        keys.retain(lkey: lkey, count: pending)
        referenced = opened
    }

    /// The open SGE.
    @inlinable var open: SGE { SGE(address: UInt64(openAddress), length: UInt32(truncatingIfNeeded: openLength), lkey: openKey) }

    /// Describes all of `range` without asking the resolver, when it can: the range
    /// lies inside the remembered region of a resolver that counts nothing or batches, and it
    /// either grows the open SGE or opens one for which there is room. Returns whether
    /// it did; when not, ``append(_:to:)`` handles the range.
    @inlinable
    mutating func appendInsideRegion(_ range: MemoryRange, to output: inout OutputSpan<SGE>) -> Bool {
        let maxLength = Int(UInt32.max)
        let address = range.address
        let length = range.length
        let end = address &+ UInt(length)
        guard reusesResolutions, address >= coverageStart, end >= address, end <= coverageEnd, length <= maxLength else {
            return false
        }
        if isOpen, address == openAddress &+ UInt(openLength) {
            guard openLength &+ length <= maxLength else { return false }
            openLength &+= length
            return true
        }
        guard opened < maxSGEs else { return false }
        if isOpen {
            guard !output.isFull else { return false }
            write(to: &output)
        }
        openAddress = address
        openLength = length
        openKey = lkey
        opened &+= 1
        isOpen = true
        return true
    }

    /// Describes as much of `range` as fits, writing closed SGEs to `output`; returns the
    /// bytes taken. Sets ``needsRoom`` when it stopped because `output` was full.
    @inlinable
    mutating func append(_ range: MemoryRange, to output: inout OutputSpan<SGE>) throws(RDMAError) -> Int {
        let maxLength = Int(UInt32.max)
        var address = range.address
        var left = range.length
        while left > 0 {
            let contiguous = isOpen && address == openAddress &+ UInt(openLength) && openLength < maxLength
            if contiguous, address < coverageEnd {
                // Inside the open SGE's region: grow it, no lookup.
                let step = Swift.min(left, Int(clamping: coverageEnd &- address), maxLength &- openLength)
                openLength &+= step
                address &+= UInt(step)
                left &-= step
                continue
            }
            let full = opened >= maxSGEs
            if !contiguous, full || (isOpen && output.isFull) {
                // A new SGE is needed and there is no room: stop before asking the resolver.
                needsRoom = !full
                break
            }
            let resolution: KeyResolution
            // Whether the answer is a new lookup's, holding a reference of a counting resolver.
            let looked: Bool
            if reusesResolutions, address >= coverageStart, address < coverageEnd {
                resolution = KeyResolution(lkey: lkey, coverage: coverageStart..<coverageEnd)
                looked = false
            } else {
                let wanted = lookaheadEnd > address &+ UInt(left) ? Int(lookaheadEnd &- address) : left
                resolution = try keys.resolve(MemoryRange(address: address, length: wanted), access: access, retaining: true)
                looked = true
                if contiguous, openKey == resolution.lkey {
                    // The next region has the same key: one SGE, one reference.
                    keys.release(lkey: resolution.lkey)
                    coverageStart = resolution.coverage.lowerBound
                    coverageEnd = resolution.coverage.upperBound
                    continue
                }
            }
            if full || (isOpen && output.isFull) {
                // Contiguous, but under another key: drop the answer; the open SGE's
                // region stays the one remembered.
                if looked { keys.release(lkey: resolution.lkey) }
                needsRoom = !full
                break
            }
            if resolution.lkey != lkey { settleReferences() }
            lkey = resolution.lkey
            coverageStart = resolution.coverage.lowerBound
            coverageEnd = resolution.coverage.upperBound
            if isOpen { write(to: &output) }
            let length = Swift.min(left, Int(clamping: coverageEnd &- address), maxLength)
            openAddress = address
            openLength = length
            openKey = lkey
            opened &+= 1
            if looked { referenced &+= 1 }
            isOpen = true
            address &+= UInt(length)
            left &-= length
        }
        return range.length &- left
    }

    /// Writes the open SGE to `output`, which has room for it.
    @inlinable
    mutating func write(to output: inout OutputSpan<SGE>) {
        pageCount &+= open.pageCount
        output.append(open)
    }

    /// Writes the open SGE, if any, to `output` when it has room; afterwards nothing is open.
    @inlinable
    mutating func close(into output: inout OutputSpan<SGE>) {
        guard isOpen, !output.isFull else { return }
        write(to: &output)
        isOpen = false
    }

    /// Appends the open SGE, if any, to `sges`; afterwards nothing is open.
    @inlinable
    mutating func close(into sges: inout [SGE]) {
        guard isOpen else { return }
        pageCount &+= open.pageCount
        sges.append(open)
        isOpen = false
    }
}

import IterExtract

/// A table of registered memory regions that do not overlap, looked up by address
/// in O(log n).
///
/// For memory whose owner registers it (library buffers, page-cache memory, several
/// pools); lookups keep no count. The table is a value: build it, then share it.
public struct RegionTable: KeyResolver, Sendable {
    /// One registered region.
    public struct Region: Hashable, Sendable {
        /// The addresses the region covers.
        public var coverage: Range<UInt>
        /// Its local key.
        public var lkey: UInt32
        /// What it allows.
        public var access: AccessFlags

        /// A region covering `coverage`, with local key `lkey`, that allows `access`.
        public init(coverage: Range<UInt>, lkey: UInt32, access: AccessFlags) {
            self.coverage = coverage
            self.lkey = lkey
            self.access = access
        }
    }

    /// The regions in address order.
    public private(set) var regions: [Region] = []

    /// An empty table.
    public init() {}

    /// Adds a region.
    ///
    /// - Throws: ``RDMAError/zeroLength(address:)`` for an empty region;
    ///   ``RDMAError/overlappingRegion(address:length:)`` when it overlaps one in the table.
    public mutating func insert(_ region: Region) throws(RDMAError) {
        let coverage = region.coverage
        guard !coverage.isEmpty else { throw .zeroLength(address: coverage.lowerBound) }
        let position = firstRegion(endingAfter: coverage.lowerBound)
        if position < regions.count, regions[position].coverage.overlaps(coverage) {
            throw .overlappingRegion(address: coverage.lowerBound, length: Int(clamping: coverage.upperBound - coverage.lowerBound))
        }
        regions.insert(region, at: position)
    }

    /// Adds a registered memory region.
    public mutating func insert(_ region: some MemoryRegion) throws(RDMAError) {
        try insert(Region(coverage: region.address..<region.address &+ UInt(region.length),
                          lkey: region.lkey, access: region.access))
    }

    /// Removes the region that starts at `address`, if any, and returns it.
    @discardableResult
    public mutating func remove(startingAt address: UInt) -> Region? {
        let position = firstRegion(endingAfter: address)
        guard position < regions.count, regions[position].coverage.lowerBound == address else { return nil }
        return regions.remove(at: position)
    }

    /// Finds the region that covers the first byte of `range`, in O(log n); takes no
    /// reference, whatever `retaining` says.
    ///
    /// - Throws: ``RDMAError/zeroLength(address:)`` and ``RDMAError/addressOverflow(address:length:)``
    ///   for an empty or wrapping range; ``RDMAError/unregisteredMemory(address:)`` when no
    ///   region covers the first byte; ``RDMAError/accessDenied(address:lkey:missing:)``
    ///   when the region does not allow `access`.
    public func resolve(_ range: MemoryRange, access: AccessFlags, retaining: Bool) throws(RDMAError) -> KeyResolution {
        try validate(range)
        let position = firstRegion(endingAfter: range.address)
        guard position < regions.count, regions[position].coverage.contains(range.address) else {
            throw .unregisteredMemory(address: range.address)
        }
        let region = regions[position]
        guard region.access.isSuperset(of: access) else {
            throw .accessDenied(address: range.address, lkey: region.lkey, missing: access.subtracting(region.access))
        }
        return KeyResolution(lkey: region.lkey, coverage: region.coverage)
    }

    /// Does nothing: the table keeps no count.
    public func release(lkey: UInt32) {}

    /// `false`: lookups keep no count.
    public var retainsRegions: Bool { false }

    /// The index of the first region that ends after `address` (binary search).
    private func firstRegion(endingAfter address: UInt) -> Int {
        regions.partitionPoint { $0.coverage.upperBound > address }
    }
}

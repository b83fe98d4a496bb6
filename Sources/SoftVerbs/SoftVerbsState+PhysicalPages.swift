#if canImport(Glibc)
import Glibc
#endif
import Verbs

/// Copies on a device that tracks physical pages: every page an access touches is
/// checked against the frame its region recorded at registration, and a page that
/// changed behaves as the old, still pinned page would for a real device.
extension SoftVerbsState {
    /// Memory a request moves, with the lkey of the region the device reaches it through;
    /// `nil` for inline data, which was copied at post time and needs no region.
    typealias TrackedSegment = (address: UInt, length: Int, lkey: UInt32?)

    /// The memory of `sges`, each through its own region (already checked to exist).
    func tracked(_ sges: [SGE]) -> [TrackedSegment] {
        sges.map { (UInt($0.address), Int($0.length), $0.lkey) }
    }

    /// ``gather(_:into:)`` with every page checked.
    mutating func gatherTracked(_ send: PendingSend, into destinations: [TrackedSegment]) {
        if let data = send.inlineData {
            data.withUnsafeBytes { bytes in
                copyTracked(from: [(UInt(bitPattern: bytes.baseAddress), bytes.count, nil)], to: destinations)
            }
        } else {
            copyTracked(from: tracked(send.sges), to: destinations)
        }
    }

    /// ``copy(from:to:)``, page by page: a piece whose source page changed since its
    /// region was registered delivers `SoftVerbs.poisonByte`, and a piece whose
    /// destination page changed is dropped.
    mutating func copyTracked(from sources: [TrackedSegment], to destinations: [TrackedSegment]) {
        let pageSize = PageFrames.pageSize
        var source = 0, sourceOffset = 0
        var destination = 0, destinationOffset = 0
        while source < sources.count, destination < destinations.count {
            let from = sources[source].address + UInt(sourceOffset)
            let to = destinations[destination].address + UInt(destinationOffset)
            // Up to the next page boundary of either side, so that one check covers the piece.
            let n = min(sources[source].length - sourceOffset, destinations[destination].length - destinationOffset,
                        Int(pageSize - from % pageSize), Int(pageSize - to % pageSize))
            if n > 0, isCurrent(to, through: destinations[destination].lkey) {
                let target = UnsafeMutableRawPointer(bitPattern: to)!
                if isCurrent(from, through: sources[source].lkey) {
                    memmove(target, UnsafeRawPointer(bitPattern: from)!, n)
                } else {
                    memset(target, Int32(SoftVerbs.poisonByte), n)
                }
                followWrite(to, through: destinations[destination].lkey)
            }
            sourceOffset += n
            destinationOffset += n
            if sourceOffset == sources[source].length { source += 1; sourceOffset = 0 }
            if destinationOffset == destinations[destination].length { destination += 1; destinationOffset = 0 }
        }
    }

    /// Whether the page holding `address` is still backed by the frame the region with
    /// `lkey` recorded for it (always, for inline data).
    func isCurrent(_ address: UInt, through lkey: UInt32?) -> Bool {
        guard let lkey else { return true }
        let recorded = regions[lkey]!.snapshot!.frames[Self.page(of: address, in: regions[lkey]!)]
        return recorded != PageFrames.absent && recorded == PageFrames.frame(ofPageAt: address)
    }

    /// Records the frame behind the page holding `address` again after the device wrote
    /// it through the region with `lkey`, having found it current.
    ///
    /// SoftVerbs writes through the program's mapping, and the first write to a page
    /// that `fork()` made copy-on-write moves the program to a copy of the page. A real
    /// device writes the physical page instead, which the program still maps until the
    /// program itself writes the page; so the region follows the program to the copy.
    /// The copy is not held as the registered pages are.
    mutating func followWrite(_ address: UInt, through lkey: UInt32?) {
        guard let lkey else { return }
        let index = Self.page(of: address, in: regions[lkey]!)
        regions[lkey]!.snapshot!.frames[index] = PageFrames.frame(ofPageAt: address)
    }

    /// The index, among the pages of `region`, of the page that holds `address`.
    private static func page(of address: UInt, in region: Region) -> Int {
        Int((address - (region.address & ~(PageFrames.pageSize - 1))) / PageFrames.pageSize)
    }
}

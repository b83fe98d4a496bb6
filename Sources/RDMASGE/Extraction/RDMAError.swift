import IterExtract

/// Errors from extraction to SGEs, key resolution and work-request planning.
///
/// Every throwing operation leaves no trace: the iterator is where it was, nothing
/// was appended, and every pin and region reference taken by the call is released.
public enum RDMAError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The iterator kind has no memory to describe as SGEs (DISCARD, PIPE).
    case notExtractable(IOIteratorKind)
    /// No key covers the byte at this address.
    case unregisteredMemory(address: UInt)
    /// The region with `lkey` covers the address but lacks the `missing` access (`lkey` is
    /// `nil` when an MR cache would register the memory without that access).
    case accessDenied(address: UInt, lkey: UInt32?, missing: AccessFlags)
    /// A lookup or registration of zero bytes.
    case zeroLength(address: UInt)
    /// A range that wraps around the address space.
    case addressOverflow(address: UInt, length: Int)
    /// A region that overlaps one already in a ``RegionTable``.
    case overlappingRegion(address: UInt, length: Int)
    /// Pinning would take the ledger past its limit.
    case pinLimitExceeded(requested: Int, available: Int)
    /// The verbs backend refused to register memory on an MR-cache miss.
    case registrationFailed(VerbsError)
    /// A peer's range for RDMA WRITE or READ, `length` bytes from `remoteAddress`,
    /// that would run past the top of its address space.
    case remoteRangeOverflow(remoteAddress: UInt64, length: Int)

    /// What went wrong, in a sentence for logs and error messages.
    public var description: String {
        switch self {
        case .notExtractable(let kind): "a \(kind) iterator has no memory to describe as SGEs"
        case .unregisteredMemory(let address): "no memory region covers 0x\(String(address, radix: 16))"
        case .accessDenied(let address, let lkey, let missing):
            "the region\(lkey.map { " with lkey 0x\(String($0, radix: 16))" } ?? "") for 0x\(String(address, radix: 16)) lacks \(missing)"
        case .zeroLength(let address): "a range of zero bytes at 0x\(String(address, radix: 16))"
        case .addressOverflow(let address, let length):
            "the range of \(length) bytes at 0x\(String(address, radix: 16)) wraps around the address space"
        case .overlappingRegion(let address, let length):
            "the region of \(length) bytes at 0x\(String(address, radix: 16)) overlaps a registered region"
        case .pinLimitExceeded(let requested, let available):
            "pinning \(requested) pages exceeds the \(available) the ledger still allows"
        case .registrationFailed(let error): "registration failed: \(error)"
        case .remoteRangeOverflow(let remoteAddress, let length):
            "the remote range of \(length) bytes at 0x\(String(remoteAddress, radix: 16)) wraps around the address space"
        }
    }
}

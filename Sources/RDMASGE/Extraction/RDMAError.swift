import IterExtract

/// Errors from extraction to SGEs, key resolution and work-request planning.
///
/// Every throwing operation leaves no trace: the iterator is where it was, nothing
/// was appended, and every pin and region reference taken by the call is released.
public enum RDMAError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The iterator layer refused, with its error unchanged: a kind that cannot be
    /// extracted (DISCARD, PIPE), a PIPE source, a pin limit. The one error strategy
    /// of the extraction contract
    /// (`IOIterator.extractionLimit(maxSize:capacity:acceptsPipe:)`).
    case iterator(IOIteratorError)
    /// No key covers the byte at this address.
    case unregisteredMemory(address: UInt)
    /// The region with `lkey` covers the address but lacks the `missing` access (`lkey` is
    /// `nil` when an MR cache would register the memory without that access).
    case accessDenied(address: UInt, lkey: UInt32?, missing: AccessFlags)
    /// A lookup or registration of zero bytes.
    case zeroLength(address: UInt)
    /// A range given to a key resolver or MR cache that wraps around the address space.
    /// (An iterator's ranges are checked when it is made, with the iterator's own
    /// `IOIteratorError.addressOverflow(address:length:)`.)
    case addressOverflow(address: UInt, length: Int)
    /// A region that overlaps one already in a ``RegionTable``.
    case overlappingRegion(address: UInt, length: Int)
    /// The verbs backend refused to register memory on an MR-cache miss.
    case registrationFailed(VerbsError)
    /// A peer's range for RDMA WRITE or READ, `length` bytes from `remoteAddress`,
    /// that would run past the top of its address space.
    case remoteRangeOverflow(remoteAddress: UInt64, length: Int)

    /// What went wrong, in a sentence for logs and error messages.
    public var description: String {
        switch self {
        case .iterator(let error): error.description
        case .unregisteredMemory(let address): "no memory region covers 0x\(String(address, radix: 16))"
        case .accessDenied(let address, let lkey, let missing):
            "the region\(lkey.map { " with lkey 0x\(String($0, radix: 16))" } ?? "") for 0x\(String(address, radix: 16)) lacks \(missing)"
        case .zeroLength(let address): "a range of zero bytes at 0x\(String(address, radix: 16))"
        case .addressOverflow(let address, let length):
            "the range of \(length) bytes at 0x\(String(address, radix: 16)) wraps around the address space"
        case .overlappingRegion(let address, let length):
            "the region of \(length) bytes at 0x\(String(address, radix: 16)) overlaps a registered region"
        case .registrationFailed(let error): "registration failed: \(error)"
        case .remoteRangeOverflow(let remoteAddress, let length):
            "the remote range of \(length) bytes at 0x\(String(remoteAddress, radix: 16)) wraps around the address space"
        }
    }
}

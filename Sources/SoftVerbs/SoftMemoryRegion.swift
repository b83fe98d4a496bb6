/// A memory region of a ``SoftVerbs`` device. Deregistered by ``deregister()`` or,
/// failing that, when the object is destroyed.
import Verbs
public final class SoftMemoryRegion: MemoryRegion, @unchecked Sendable {
    let device: SoftVerbs
    public let address: UInt
    public let length: Int
    public let lkey: UInt32
    public let rkey: UInt32
    public let access: AccessFlags

    init(device: SoftVerbs, address: UInt, length: Int, lkey: UInt32, rkey: UInt32, access: AccessFlags) {
        self.device = device
        self.address = address
        self.length = length
        self.lkey = lkey
        self.rkey = rkey
        self.access = access
    }

    public func deregister() throws(VerbsError) {
        device.state.withLock { $0.deregister(lkey: lkey) }
    }

    /// Whether the region is still registered.
    public var isRegistered: Bool { device.state.withLock { $0.regions[lkey] != nil } }

    deinit { device.state.withLock { $0.deregister(lkey: lkey) } }
}

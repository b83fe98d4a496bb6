#if RDMA
import CVerbs
import Glibc
import Verbs

/// An RDMA device opened through libibverbs: a real adapter or soft-RoCE (`rxe`).
///
/// It conforms to the same `VerbsDevice` protocol as `SoftVerbs`, so every RDMA
/// path of the library runs on it unchanged. A device is opened for one port and
/// one source GID: queue pairs connected with `QueuePair.connect(_:_:)` address
/// each other by GID (RoCE v2 when the port is Ethernet), and the GID is found by
/// scanning the port's table for the IPv4-mapped RoCE v2 entry unless one is named.
///
/// Ownership follows the verbs object graph: a protection domain keeps its device
/// alive, a memory region and a queue pair keep their domain alive, a queue pair
/// keeps its completion queues alive. So releasing the last reference destroys
/// queue pairs before completion queues, regions before their domain, and the
/// domain before the device context, as libibverbs requires; every object also has
/// an explicit `close()` or `deregister()`.
public final class IBVerbs: VerbsDevice, @unchecked Sendable {
    /// The device's name, such as `rxe0` (`ibv_get_device_name`).
    public let name: String
    /// The device's limits, as `ibv_query_device` and `ibv_query_port` reported them when
    /// it was opened.
    public let attributes: DeviceAttributes
    /// The port queue pairs of this device use.
    public let port: IBVerbsPort
    /// The source GID of every queue pair of this device.
    public let gid: IBVerbsGID
    /// The most RDMA READs a queue pair may have outstanding, as initiator or responder
    /// (`max_qp_rd_atom` and `max_qp_init_rd_atom`, whichever is smaller).
    public let maxReadsInFlight: Int
    let context: UnsafeMutablePointer<ibv_context>

    /// The names of the RDMA devices on this machine. The corresponding C function is
    /// `ibv_get_device_list`.
    public static func deviceNames() throws(VerbsError) -> [String] {
        let (list, count) = try IBVerbsCalls.getDeviceList()
        defer { IBVerbsCalls.freeDeviceList(list) }
        return (0..<count).compactMap { list[$0].map(IBVerbsCalls.deviceName) }
    }

    /// Opens the device called `name` (the first one when `nil`) for `port`.
    ///
    /// `gidIndex` picks the source GID; when `nil`, the port's GID table is scanned for
    /// the first RoCE v2 GID that maps an IPv4 address (on an InfiniBand port, index 0).
    ///
    /// The corresponding C functions are `ibv_open_device`, `ibv_query_device`,
    /// `ibv_query_port` and `ibv_query_gid_table`.
    /// - Throws: `ENODEV` (call `ibv_open_device`) when no such device exists or no GID
    ///   fits; the errors of the C functions otherwise. Nothing stays open on error.
    public init(name: String? = nil, port: UInt8 = 1, gidIndex: Int? = nil) throws(VerbsError) {
        let (list, count) = try IBVerbsCalls.getDeviceList()
        defer { IBVerbsCalls.freeDeviceList(list) }
        let devices = (0..<count).compactMap { list[$0] }
        guard let device = devices.first(where: { name == nil || IBVerbsCalls.deviceName($0) == name }) else {
            throw IBVerbsCalls.failure(.getDeviceList, code: ENODEV,
                                       "no device \(name ?? "at all") among \(devices.map(IBVerbsCalls.deviceName))")
        }
        let context = try IBVerbsCalls.openDevice(device)
        do {
            try IBVerbsCalls.setNonBlocking(context.pointee.async_fd, .getAsyncEvent)
            let device = try IBVerbsCalls.queryDevice(context)
            let portAttributes = IBVerbsPort(number: port, try IBVerbsCalls.queryPort(context, port: port))
            self.gid = try Self.sourceGID(context, port: portAttributes, index: gidIndex)
            self.port = portAttributes
            self.attributes = DeviceAttributes(
                maxSGEs: Int(device.max_sge), maxMemoryRegionSize: Int(clamping: device.max_mr_size),
                maxMemoryRegions: Int(device.max_mr), maxQueuePairWorkRequests: Int(device.max_qp_wr),
                maxCompletionQueueEntries: Int(device.max_cqe), maxMessageSize: portAttributes.maxMessageSize,
                maxInlineData: 0)
            self.maxReadsInFlight = max(1, Int(min(device.max_qp_rd_atom, device.max_qp_init_rd_atom)))
        } catch {
            _ = IBVerbsCalls.closeDevice(context)
            throw error
        }
        self.name = IBVerbsCalls.deviceName(device)
        self.context = context
    }

    deinit { _ = IBVerbsCalls.closeDevice(context) }

    /// The port's current attributes (its state may change after opening). The
    /// corresponding C function is `ibv_query_port`.
    public func queryPort() throws(VerbsError) -> IBVerbsPort {
        IBVerbsPort(number: port.number, try IBVerbsCalls.queryPort(context, port: port.number))
    }

    /// Every valid GID of the port, in table order. The corresponding C function is
    /// `ibv_query_gid_table`.
    public func gids() throws(VerbsError) -> [IBVerbsGID] {
        try Self.gidTable(context, port: port)
    }

    /// Allocates a protection domain. The corresponding C function is `ibv_alloc_pd`.
    public func allocateProtectionDomain() throws(VerbsError) -> IBVerbsProtectionDomain {
        IBVerbsProtectionDomain(device: self, pd: try IBVerbsCalls.allocatePD(context))
    }

    /// The context's `async_fd`, readable while an asynchronous event waits; made
    /// non-blocking when the device was opened.
    public var eventFileDescriptor: Int32 { context.pointee.async_fd }

    /// Takes the next asynchronous event without blocking and acknowledges it; `nil`
    /// when none waits. The corresponding C functions are `ibv_get_async_event` and
    /// `ibv_ack_async_event`.
    public func takeEvent() throws(VerbsError) -> DeviceEvent? {
        guard let (type, queuePair, port) = try IBVerbsCalls.takeAsyncEvent(context) else { return nil }
        return Self.deviceEvent(type, queuePairNumber: queuePair, port: port)
    }

    /// The typed form of an `enum ibv_event_type` and what it names.
    static func deviceEvent(_ type: ibv_event_type, queuePairNumber: UInt32, port: UInt8) -> DeviceEvent {
        switch type {
        case IBV_EVENT_PORT_ACTIVE: .portActive(port: port)
        case IBV_EVENT_PORT_ERR: .portError(port: port)
        case IBV_EVENT_LID_CHANGE, IBV_EVENT_PKEY_CHANGE, IBV_EVENT_GID_CHANGE, IBV_EVENT_SM_CHANGE,
             IBV_EVENT_CLIENT_REREGISTER: .portChanged(port: port)
        case IBV_EVENT_QP_FATAL: .queuePairFatal(queuePairNumber: queuePairNumber)
        case IBV_EVENT_QP_REQ_ERR: .queuePairRequestError(queuePairNumber: queuePairNumber)
        case IBV_EVENT_QP_ACCESS_ERR: .queuePairAccessError(queuePairNumber: queuePairNumber)
        case IBV_EVENT_COMM_EST: .communicationEstablished(queuePairNumber: queuePairNumber)
        case IBV_EVENT_SQ_DRAINED: .sendQueueDrained(queuePairNumber: queuePairNumber)
        case IBV_EVENT_QP_LAST_WQE_REACHED: .lastWorkRequestReached(queuePairNumber: queuePairNumber)
        case IBV_EVENT_CQ_ERR: .completionQueueError
        case IBV_EVENT_DEVICE_FATAL: .deviceFatal
        default: .other(code: type.rawValue)
        }
    }

    private static func gidTable(_ context: UnsafeMutablePointer<ibv_context>, port: IBVerbsPort) throws(VerbsError) -> [IBVerbsGID] {
        try IBVerbsCalls.queryGIDTable(context, capacity: port.gidTableLength * 2).filter { $0.port_num == UInt32(port.number) }.map { entry in
            IBVerbsGID(index: Int(entry.gid_index), port: port.number,
                       bytes: withUnsafeBytes(of: entry.gid.raw) { Array($0) }, kind: IBVerbsGID.Kind(rawValue: entry.gid_type))
        }
    }

    /// The GID at `index`, or the one a scan of the table picks.
    private static func sourceGID(_ context: UnsafeMutablePointer<ibv_context>, port: IBVerbsPort,
                                  index: Int?) throws(VerbsError) -> IBVerbsGID {
        if let index {
            let gid = try IBVerbsCalls.queryGID(context, port: port.number, index: index)
            let kind = try gidTable(context, port: port).first { $0.index == index }?.kind
            return IBVerbsGID(index: index, port: port.number, bytes: withUnsafeBytes(of: gid.raw) { Array($0) }, kind: kind)
        }
        let table = try gidTable(context, port: port)
        let found = port.isEthernet
            ? table.first { $0.kind == .roceV2 && $0.ipv4Address != nil }
            : table.first { $0.index == 0 }
        guard let found else {
            throw IBVerbsCalls.failure(.queryGIDTable, code: ENODEV,
                                       "no IPv4-mapped RoCE v2 GID among \(table.count) entries of port \(port.number)")
        }
        return found
    }
}
#endif

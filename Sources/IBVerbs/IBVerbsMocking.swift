#if RDMA
import CVerbs
import Glibc
import Verbs

/// A stand-in for libibverbs and librdmacm, for tests (debug builds only): while one is
/// installed with ``withMockedVerbs(_:)``, every function of ``IBVerbsCalls`` records the
/// C function it would call in ``trace`` and, instead of calling it, fails as
/// ``failures`` says or succeeds with a fake object (zeroed memory the driver owns, freed
/// with it). swift-system's mocking driver is the model: one seam, one function per C call,
/// each asking the driver first.
///
/// A driver belongs to the task that installed it: tests running in parallel each see
/// their own, and code outside any driver calls C.
package final class IBVerbsMockingDriver: @unchecked Sendable {
    /// How a mocked C function fails, in the three conventions libibverbs and librdmacm use.
    package enum Failure: Sendable {
        /// Returns the error number itself (most libibverbs calls).
        case returns(Int32)
        /// Returns the error number negated (some providers).
        case returnsNegated(Int32)
        /// Returns -1 or a null pointer and sets `errno` (librdmacm, the allocating calls).
        case setsErrno(Int32)
    }

    #if IBVERBS_MOCKING
    @TaskLocal static var current: IBVerbsMockingDriver?
    #endif

    /// The C functions called, in order.
    package private(set) var trace: [String] = []
    /// The C functions that fail, and how; the others succeed.
    package var failures: [String: Failure] = [:]
    /// The devices `ibv_get_device_list` finds.
    package var deviceNames = ["mock0"]
    /// Fake objects handed out, freed with the driver.
    private var objects: [UnsafeMutableRawPointer] = []

    package init() {}

    deinit { for object in objects { object.deallocate() } }

    /// The number of calls of `function` in the trace.
    package func count(of function: String) -> Int { trace.lazy.filter { $0 == function }.count }

    /// Records `function` and returns its status: 0, or its failure in its convention.
    func status(_ function: String) -> Int32 {
        trace.append(function)
        switch failures[function] {
        case nil: return 0
        case .returns(let code): return code
        case .returnsNegated(let code): return -code
        case .setsErrno(let code):
            errno = code
            return -1
        }
    }

    /// Records `function` and returns a fake `T`, or `nil` with `errno` set when it fails.
    func object<T>(_ function: String, _: T.Type) -> UnsafeMutablePointer<T>? {
        let status = status(function)
        guard status == 0 else {
            if status != -1 { errno = abs(status) }
            return nil
        }
        let object = UnsafeMutableRawPointer.allocate(byteCount: max(MemoryLayout<T>.size, 1), alignment: MemoryLayout<T>.alignment)
        object.initializeMemory(as: UInt8.self, repeating: 0, count: max(MemoryLayout<T>.size, 1))
        objects.append(object)
        return object.assumingMemoryBound(to: T.self)
    }

    /// A fake device list of ``deviceNames``: one fake `ibv_device` each, named.
    func deviceList() -> UnsafeMutablePointer<UnsafeMutablePointer<ibv_device>?> {
        let list = UnsafeMutablePointer<UnsafeMutablePointer<ibv_device>?>.allocate(capacity: deviceNames.count + 1)
        objects.append(UnsafeMutableRawPointer(list))
        for (position, name) in deviceNames.enumerated() {
            let device = UnsafeMutablePointer<ibv_device>.allocate(capacity: 1)
            objects.append(UnsafeMutableRawPointer(device))
            UnsafeMutableRawPointer(device).initializeMemory(as: UInt8.self, repeating: 0, count: MemoryLayout<ibv_device>.size)
            withUnsafeMutableBytes(of: &device.pointee.name) { bytes in
                for (offset, byte) in name.utf8.prefix(bytes.count - 1).enumerated() { bytes[offset] = byte }
            }
            list[position] = device
        }
        list[deviceNames.count] = nil
        return list
    }

    /// What a mocked `ibv_query_device` reports: an rxe-sized device.
    var deviceAttributes: ibv_device_attr {
        var attributes = ibv_device_attr()
        attributes.max_sge = 32
        attributes.max_mr_size = UInt64.max
        attributes.max_mr = 1 << 16
        attributes.max_qp_wr = 1 << 14
        attributes.max_cqe = 1 << 15
        attributes.max_qp_rd_atom = 128
        attributes.max_qp_init_rd_atom = 128
        return attributes
    }

    /// What a mocked `ibv_query_port` reports: an active Ethernet port of 4 KiB MTU.
    var portAttributes: ibv_port_attr {
        var attributes = ibv_port_attr()
        attributes.state = IBV_PORT_ACTIVE
        attributes.max_mtu = IBV_MTU_4096
        attributes.active_mtu = IBV_MTU_4096
        attributes.gid_tbl_len = 1
        attributes.max_msg_sz = 1 << 31
        attributes.link_layer = UInt8(IBV_LINK_LAYER_ETHERNET)
        return attributes
    }

    /// What a mocked `ibv_query_gid_table` reports: one RoCE v2 GID of port 1 for
    /// 192.0.2.1 (documentation addresses only).
    var gidTable: [ibv_gid_entry] {
        var entry = ibv_gid_entry()
        withUnsafeMutableBytes(of: &entry.gid.raw) { bytes in
            bytes[10] = 0xFF
            bytes[11] = 0xFF
            (bytes[12], bytes[13], bytes[14], bytes[15]) = (192, 0, 2, 1)
        }
        entry.port_num = 1
        entry.gid_type = UInt32(IBV_GID_TYPE_ROCE_V2.rawValue)
        return [entry]
    }
}

#if IBVERBS_MOCKING
/// Runs `body` with `driver` standing in for libibverbs and librdmacm (see
/// ``IBVerbsMockingDriver``); objects made inside must be gone before it returns.
package func withMockedVerbs<R>(_ driver: IBVerbsMockingDriver, _ body: () throws -> R) rethrows -> R {
    try IBVerbsMockingDriver.$current.withValue(driver, operation: body)
}
#endif

extension IBVerbsCalls {
    /// The driver standing in for C, if a test installed one (never in release builds).
    @inline(__always)
    static var mock: IBVerbsMockingDriver? {
        #if IBVERBS_MOCKING
        IBVerbsMockingDriver.current
        #else
        nil
        #endif
    }

    /// The mocked status of `function`; `nil` when C is to be called.
    @inline(__always)
    static func mocked(_ function: String) -> Int32? { mock?.status(function) }

    /// The mocked status of `function`, which hands out a fake object through `object`
    /// (librdmacm's out-pointer calls); `nil` when C is to be called.
    @inline(__always)
    static func mocked<T>(_ function: String, into object: inout UnsafeMutablePointer<T>?) -> Int32? {
        guard let mock else { return nil }
        object = mock.object(function, T.self)
        return object == nil ? -1 : 0
    }

    /// A mocked object from `function` (`.some(nil)` when it fails); `nil` when C is to be called.
    @inline(__always)
    static func mocked<T>(_ function: String, _ type: T.Type) -> UnsafeMutablePointer<T>?? {
        mock.map { $0.object(function, type) }
    }
}

#endif

#if RDMA
import Glibc
import IBVerbs
import Testing
import Verbs

/// The IBVerbs backend against a mocked libibverbs and librdmacm (``IBVerbsMockingDriver``):
/// how each C convention for failure becomes a ``VerbsError``, and that nothing opened,
/// allocated or created is left behind when a later step fails. These need no device;
/// what a real device does is the rxe suite's (`Scripts/rxe/run-e2e`).
@Suite("IBVerbs on a mocked libibverbs and librdmacm")
struct IBVerbsMockedTests {
    let driver = IBVerbsMockingDriver()

    @Test("opening a device queries it, its port and its GID table, and picks the IPv4-mapped RoCE v2 GID")
    func openDevice() throws {
        try withMockedVerbs(driver) {
            let device = try IBVerbs(name: "mock0")
            #expect(device.name == "mock0")
            #expect(device.gid.ipv4Address == "192.0.2.1")
            #expect(device.attributes.maxSGEs == 32 && device.maxReadsInFlight == 128)
        }
        #expect(driver.count(of: "ibv_open_device") == 1 && driver.count(of: "ibv_close_device") == 1)
        #expect(driver.count(of: "ibv_get_device_list") == driver.count(of: "ibv_free_device_list"))
        #expect(driver.trace.firstIndex(of: "ibv_close_device") == driver.trace.count - 1, "closed last")
    }

    @Test("a device that is not there: ENODEV naming the devices there are, and the list freed")
    func missingDevice() throws {
        driver.deviceNames = ["mlx5_0", "mlx5_1"]
        let error = withMockedVerbs(driver) { #expect(throws: VerbsError.self) { try IBVerbs(name: "rxe0") } }
        #expect(error?.call == .getDeviceList && error?.errno == ENODEV)
        #expect(error?.reason.contains("mlx5_1") == true)
        #expect(driver.count(of: "ibv_free_device_list") == 1 && driver.count(of: "ibv_open_device") == 0)
    }

    @Test("a step of opening that fails closes the device once and reports that step's error",
          arguments: ["fcntl", "ibv_query_device", "ibv_query_port", "ibv_query_gid_table"])
    func failedOpen(step: String) throws {
        driver.failures[step] = .setsErrno(EIO)
        let error = withMockedVerbs(driver) { #expect(throws: VerbsError.self) { try IBVerbs() } }
        #expect(error?.errno == EIO)
        #expect(driver.count(of: "ibv_open_device") == 1 && driver.count(of: "ibv_close_device") == 1)
        #expect(driver.trace.last == "ibv_close_device" || driver.trace.last == "ibv_free_device_list")
    }

    @Test("an error number returned, returned negated, or -1 with errno: the same typed error",
          arguments: [IBVerbsMockingDriver.Failure.returns(EBUSY), .returnsNegated(EBUSY), .setsErrno(EBUSY)])
    func errorConventions(failure: IBVerbsMockingDriver.Failure) throws {
        try withMockedVerbs(driver) {
            let domain = try IBVerbs().allocateProtectionDomain()
            driver.failures["ibv_dealloc_pd"] = failure
            let error = #expect(throws: VerbsError.self) { try domain.close() }
            #expect(error?.call == .deallocateProtectionDomain && error?.errno == EBUSY)
            driver.failures["ibv_dealloc_pd"] = nil
            try domain.close()
            try domain.close()
        }
        // The failed close left the domain open; the second deallocated it, the third and
        // the last reference did nothing.
        #expect(driver.count(of: "ibv_dealloc_pd") == 2)
    }

    @Test("a refused registration is a typed error with nothing to deregister; a region deregisters once")
    func registration() throws {
        let memory = UnsafeMutableRawBufferPointer.allocate(byteCount: 8192, alignment: 4096)
        defer { memory.deallocate() }
        try withMockedVerbs(driver) {
            let domain = try IBVerbs().allocateProtectionDomain()
            driver.failures["ibv_reg_mr"] = .setsErrno(EFAULT)
            let error = #expect(throws: VerbsError.self) { try domain.registerMemory(memory, access: .localWrite) }
            #expect(error?.call == .registerMemory && error?.errno == EFAULT)
            #expect(driver.count(of: "ibv_dereg_mr") == 0)
            driver.failures["ibv_reg_mr"] = nil
            let region = try domain.registerMemory(memory, access: .localWrite)
            #expect(region.isRegistered && region.length == 8192)
            try region.deregister()
            try region.deregister()
            #expect(!region.isRegistered)
        }
        #expect(driver.count(of: "ibv_dereg_mr") == 1)
        #expect(driver.trace.firstIndex(of: "ibv_dereg_mr")! < driver.trace.firstIndex(of: "ibv_dealloc_pd")!)
    }

    @Test("a listener whose address is taken: EADDRINUSE, and its identifier and event channel destroyed")
    func listenerOnTakenAddress() throws {
        driver.failures["rdma_bind_addr"] = .setsErrno(EADDRINUSE)
        let error = withMockedVerbs(driver) {
            #expect(throws: VerbsError.self) { try RDMAListener(host: "192.0.2.1", port: 18515) }
        }
        #expect(error?.call == .bindAddress && error?.errno == EADDRINUSE)
        #expect(driver.count(of: "rdma_create_id") == 1 && driver.count(of: "rdma_destroy_id") == 1)
        #expect(driver.count(of: "rdma_create_event_channel") == 1 && driver.count(of: "rdma_destroy_event_channel") == 1)
        #expect(driver.count(of: "rdma_listen") == 0)
    }

    @Test("a listener that listens, then closes: one identifier and one channel, each destroyed once")
    func listenerLifetime() throws {
        try withMockedVerbs(driver) {
            let listener = try RDMAListener(host: "192.0.2.1", port: 18515)
            try listener.close()
            try listener.close()
        }
        #expect(driver.trace.filter { $0.hasPrefix("rdma_") && $0 != "rdma_get_src_port" } == [
            "rdma_create_event_channel", "rdma_create_id", "rdma_bind_addr", "rdma_listen",
            "rdma_destroy_id", "rdma_destroy_event_channel",
        ])
    }
}
#endif

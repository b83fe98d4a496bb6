#if RDMA
import Dispatch
import Glibc
import IBVerbs
import Verbs

/// The device's asynchronous events for real: the network device under the RDMA port
/// is taken down and brought back up (`ip link set … down|up`), which rxe reports as
/// `IBV_EVENT_PORT_ERR` and `IBV_EVENT_PORT_ACTIVE`. The down event is waited for on
/// the device's descriptor; the up event is awaited through `device.events()` on the
/// shared event loop, the path a Swift program takes.
struct LinkEvents {
    let device: IBVerbs
    /// The network device the RDMA port runs on (`dummy0` in the guest).
    let netdev: String

    /// What came after each step: the first port event seen, or `nil` when none did
    /// within `timeout`, and how long the port took to be ACTIVE again.
    struct Outcome {
        var down: DeviceEvent?
        var up: DeviceEvent?
        var activeAgainAfter: Double?
    }

    func run(timeout: Duration = .seconds(10)) throws -> Outcome {
        var outcome = Outcome()
        while try device.takeEvent() != nil {}
        guard system("ip link set \(netdev) down") == 0 else { throw VerbsError(.queryPort, errno: EIO, "ip link set \(netdev) down failed") }
        outcome.down = try waitOnDescriptor(timeout: timeout) { if case .portError = $0 { true } else { false } }

        // Awaited on the event loop: a task iterates the sequence while this thread waits on a semaphore.
        final class Box: @unchecked Sendable { var event: DeviceEvent? }
        let box = Box()
        let done = DispatchSemaphore(value: 0)
        let device = self.device
        let watcher = Task {
            defer { done.signal() }
            for try await event in device.events() {
                if case .portActive = event { box.event = event; return }
            }
        }
        let started = ContinuousClock.now
        guard system("ip link set \(netdev) up") == 0 else { throw VerbsError(.queryPort, errno: EIO, "ip link set \(netdev) up failed") }
        let (seconds, attoseconds) = timeout.components
        if done.wait(timeout: .now() + .nanoseconds(Int(seconds) * 1_000_000_000 + Int(attoseconds / 1_000_000_000))) == .timedOut {
            watcher.cancel()
            done.wait()
        }
        outcome.up = box.event
        while ContinuousClock.now - started < timeout {
            if try device.queryPort().state == .active {
                let (s, a) = (ContinuousClock.now - started).components
                outcome.activeAgainAfter = Double(s) + Double(a) / 1e18
                break
            }
            usleep(20_000)
        }
        return outcome
    }

    /// Takes events, sleeping in poll(2) on the device's descriptor between them, until
    /// one satisfies `wanted` or `timeout` passes.
    private func waitOnDescriptor(timeout: Duration, _ wanted: (DeviceEvent) -> Bool) throws -> DeviceEvent? {
        let deadline = ContinuousClock.now.advanced(by: timeout)
        while ContinuousClock.now < deadline {
            while let event = try device.takeEvent() { if wanted(event) { return event } }
            var entry = pollfd(fd: device.eventFileDescriptor, events: Int16(POLLIN), revents: 0)
            _ = poll(&entry, 1, 100)
        }
        return nil
    }
}
#endif

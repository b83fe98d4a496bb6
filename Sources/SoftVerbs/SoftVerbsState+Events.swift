#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Verbs

/// Completion events and asynchronous device events: what `ibv_req_notify_cq`,
/// `ibv_get_cq_event` and `ibv_get_async_event` see, with a real `eventfd(2)` per
/// channel and per device so that callers wait on descriptors as with libibverbs.
extension SoftVerbsState {
    /// Raises the queue's event when it is armed for this completion: any completion
    /// when armed for all, only `wakesSolicited` ones (a solicited receive or an
    /// error) when armed for solicited ones. An event disarms the queue.
    mutating func raiseEvent(_ queue: UInt32, wakesSolicited: Bool) {
        guard let solicitedOnly = queues[queue]?.armedSolicitedOnly, let channel = queues[queue]!.channel else { return }
        if solicitedOnly, !wakesSolicited { return }
        queues[queue]!.armedSolicitedOnly = nil
        channels[channel]!.events.append(queue)
        Self.signal(channels[channel]!.descriptor)
    }

    /// Takes every event of `channel`, marking each named queue notified; the count.
    mutating func takeEvents(_ channel: UInt32) -> Int {
        guard let events = channels[channel]?.events else { return 0 }
        // Drained even with no events left: a destroyed queue takes its events with it
        // but cannot unsignal the descriptor, which would otherwise stay readable.
        Self.drain(channels[channel]!.descriptor)
        if events.isEmpty { return 0 }
        channels[channel]!.events.removeAll(keepingCapacity: true)
        for queue in events { queues[queue]?.notified = true }
        return events.count
    }

    /// Records a device event and makes the device's descriptor readable.
    mutating func raise(_ event: DeviceEvent) {
        deviceEvents.append(event)
        Self.signal(deviceEventDescriptor)
    }

    /// The oldest device event, if any; the descriptor stays readable while more wait.
    mutating func takeDeviceEvent() -> DeviceEvent? {
        guard !deviceEvents.isEmpty else { return nil }
        let event = deviceEvents.removeFirst()
        if deviceEvents.isEmpty { Self.drain(deviceEventDescriptor) }
        return event
    }

    /// Makes an `eventfd` readable.
    static func signal(_ descriptor: Int32) {
        var one: UInt64 = 1
        _ = write(descriptor, &one, MemoryLayout<UInt64>.size)
    }

    /// Makes an `eventfd` unreadable again (non-blocking: nothing to read is fine).
    static func drain(_ descriptor: Int32) {
        var count: UInt64 = 0
        _ = read(descriptor, &count, MemoryLayout<UInt64>.size)
    }
}

/// A device's asynchronous events as an asynchronous sequence: each step takes the
/// next event (``VerbsDevice/takeEvent()``) and, when none waits, suspends on a
/// ``CompletionEventLoop`` until the device's event descriptor is readable.
/// Cancelling the iterating task ends the sequence.
public struct DeviceEvents<Device: VerbsDevice>: AsyncSequence, Sendable {
    /// The device whose events the sequence yields.
    public let device: Device
    /// The loop that watches the device's descriptor.
    public let loop: CompletionEventLoop

    /// Yields events one by one.
    public struct AsyncIterator: AsyncIteratorProtocol {
        let sequence: DeviceEvents

        /// The next event; `nil` once the task is cancelled.
        public mutating func next() async throws(VerbsError) -> DeviceEvent? {
            while true {
                if Task.isCancelled { return nil }
                if let event = try sequence.device.takeEvent() { return event }
                // Readable means an event waits; another reader may take it first, and
                // then this one takes the next.
                switch await sequence.loop.wait(on: sequence.device.eventFileDescriptor, drain: {}, wakesOnReadable: true,
                                                     until: { false }) {
                case .ready: continue
                case .cancelled: return nil
                case .failed(let error): throw error
                }
            }
        }
    }

    /// An iterator over the device's events.
    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(sequence: self) }
}

extension VerbsDevice {
    /// The device's asynchronous events (port up and down, queue-pair and device
    /// failures) as an asynchronous sequence waiting on `loop`.
    public func events(on loop: CompletionEventLoop = .shared) -> DeviceEvents<Self> {
        DeviceEvents(device: self, loop: loop)
    }
}

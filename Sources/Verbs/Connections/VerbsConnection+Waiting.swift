extension VerbsConnection {
    /// The next event, waiting at most `timeout` (forever when `nil`) without
    /// spinning; `nil` when the time ran out first.
    /// - Throws: What ``takeEvent()`` throws.
    public func nextEvent(timeout: Duration? = nil) throws(VerbsError) -> ConnectionEvent? {
        try takeWaiting(on: eventFileDescriptor, timeout: timeout, takeEvent)
    }

    /// The connection's events as an asynchronous sequence, waiting on `loop` (one
    /// dedicated thread watches the descriptor; no task blocks a thread of the
    /// concurrency pool). The sequence ends after an event that ends the connection
    /// (``ConnectionEvent/endsConnection``) or when the iterating task is cancelled.
    public func events(on loop: CompletionEventLoop = .shared) -> ConnectionEvents<Self> {
        ConnectionEvents(connection: self, loop: loop)
    }
}

extension VerbsListener {
    /// The next connection request, waiting at most `timeout` (forever when `nil`)
    /// without spinning; `nil` when the time ran out first.
    /// - Throws: What ``takeRequest()`` throws.
    public func accept(timeout: Duration? = nil) throws(VerbsError) -> Request? {
        try takeWaiting(on: eventFileDescriptor, timeout: timeout, takeRequest)
    }

    /// The next connection request, suspending on `loop` until one arrives; `nil`
    /// when the task is cancelled.
    /// - Throws: What ``takeRequest()`` throws.
    public func accept(on loop: CompletionEventLoop = .shared) async throws(VerbsError) -> Request? {
        while true {
            if Task.isCancelled { return nil }
            if let request = try takeRequest() { return request }
            switch await loop.wait(on: eventFileDescriptor, drain: {}, wakesOnReadable: true, until: { false }) {
            case .ready: continue
            case .cancelled: return nil
            case .failed(let error): throw error
            }
        }
    }
}

/// A connection's events as an asynchronous sequence: each step takes the next event
/// (``VerbsConnection/takeEvent()``) and, when none waits, suspends on a
/// ``CompletionEventLoop`` until the connection's descriptor is readable. The
/// sequence ends after an event that ends the connection, or when the iterating
/// task is cancelled.
public struct ConnectionEvents<Connection: VerbsConnection>: AsyncSequence, Sendable {
    /// The connection whose events the sequence yields.
    public let connection: Connection
    /// The loop that watches the connection's descriptor.
    public let loop: CompletionEventLoop

    /// Yields events one by one.
    public struct AsyncIterator: AsyncIteratorProtocol {
        let sequence: ConnectionEvents
        var ended = false

        /// The next event; `nil` after an event that ended the connection, or once the
        /// task is cancelled.
        public mutating func next() async throws(VerbsError) -> ConnectionEvent? {
            while !ended {
                if Task.isCancelled { return nil }
                if let event = try sequence.connection.takeEvent() {
                    ended = event.endsConnection
                    return event
                }
                switch await sequence.loop.wait(on: sequence.connection.eventFileDescriptor, drain: {}, wakesOnReadable: true,
                                                     until: { false }) {
                case .ready: continue
                case .cancelled: return nil
                case .failed(let error): throw error
                }
            }
            return nil
        }
    }

    /// An iterator over the connection's events.
    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(sequence: self) }
}

/// What `take` returns, sleeping on `descriptor` while it returns `nil`, at most
/// `timeout` (forever when `nil`); `nil` when the time ran out first.
private func takeWaiting<Value>(
    on descriptor: Int32, timeout: Duration?, _ take: () throws(VerbsError) -> Value?
) throws(VerbsError) -> Value? {
    let deadline = timeout.map { ContinuousClock.now.advanced(by: $0) }
    while true {
        if let value = try take() { return value }
        guard try sleepUntilReadable(descriptor, until: deadline, call: .getConnectionEvent) else { return nil }
    }
}

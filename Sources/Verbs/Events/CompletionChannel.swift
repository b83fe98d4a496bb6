/// A completion channel: where completion queues raise an event when a completion
/// arrives after they were armed, and the file descriptor that becomes readable then.
///
/// A queue created with a channel (`ProtectionDomain.createCompletionQueue(capacity:channel:)`)
/// raises at most one event per arming (``CompletionQueue/requestNotification(solicitedOnly:)``).
/// Whoever reads the channel calls ``takeEvents()``, which marks each queue named by an
/// event as notified (``CompletionQueue/takeNotification()`` reports it) and acknowledges
/// the events in batches; a queue acknowledges what is left before it is destroyed,
/// so unacknowledged events never block its destruction.
///
/// Use a channel from one reader at a time: the thread that blocks in
/// `CompletionQueue.wait(into:timeout:solicitedOnly:interruption:)`, or a ``CompletionEventLoop``
/// (the form for `async` code and for many queues on one channel). Several queues may
/// share one channel.
///
/// The corresponding C type is `struct ibv_comp_channel`.
public protocol CompletionChannel: AnyObject, Sendable {
    /// The descriptor that is readable while an event waits, in non-blocking mode: for
    /// callers who run their own `epoll(7)` or event loop, and then call ``takeEvents()``.
    var fileDescriptor: Int32 { get }

    /// Takes every event waiting on the channel without blocking, marks the queue each
    /// names as notified, and returns how many it took (0 when none waited).
    ///
    /// The corresponding C functions are `ibv_get_cq_event` and, per batch,
    /// `ibv_ack_cq_events`.
    func takeEvents() throws(VerbsError) -> Int

    /// Destroys the channel. The corresponding C function is `ibv_destroy_comp_channel`.
    /// - Throws: `EBUSY` while a completion queue still uses it.
    func close() throws(VerbsError)
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import RDMASGE

extension SMBDirectConnection {
    /// Ends the connection in order: waits for the sends and RDMA operations under
    /// way, then flushes the receives and releases everything (see `tearDown()`).
    /// Closing a connection that already ended does nothing.
    public func close() throws(SMBDirectError) {
        switch state {
        case .closed, .failed: return
        case .idle: break
        case .negotiating, .connected:
            try wait(for: "the last sends to complete", sending: false) { sendsInFlight == 0 && rdmaInFlight == 0 }
        }
        state = .closed
        tearDown()
    }

    /// Ends the connection at once, as when the connection manager reports that the
    /// peer went away or the upper layer gives up: everything posted is flushed and
    /// released, and the state becomes ``State/failed(_:)`` with
    /// ``SMBDirectError/disconnected``. Does nothing to a connection that already ended.
    public func disconnect() {
        switch state {
        case .negotiating, .connected: _ = fail(.disconnected)
        case .idle:
            state = .failed(.disconnected)
            tearDown()
        case .closed, .failed: return
        }
    }

    /// Whether the connection ended with an error.
    public var hasFailed: Bool {
        if case .failed = state { return true }
        return false
    }

    /// Ends the connection because of `error`: records it as the state, flushes and
    /// releases everything, and returns it for the caller to throw.
    func fail(_ error: SMBDirectError) -> SMBDirectError {
        if case .failed(let first) = state { return first }
        state = .failed(error)
        tearDown()
        return error
    }

    /// Moves the queue pair to the error state, which flushes every outstanding
    /// request, and waits until each has reported (or the configured timeout has
    /// passed); then destroys the queue pair and completion queue, deregisters the
    /// buffers, releases what unfinished sends retained and flushes the send
    /// registration cache, so that no region of the connection outlives it.
    ///
    /// Memory is freed only once the queue pair is gone, since until then the device
    /// may still read or write it. When the queue pair cannot be destroyed, the
    /// arena and what unfinished sends retained are kept, leaked on purpose, and
    /// ``teardownError`` says why.
    ///
    /// Registrations still held by the caller stay valid until their
    /// ``release(_:)``, which deregisters them.
    func tearDown() {
        guard !isTornDown else { return }
        isTornDown = true
        link = nil
        try? queuePair.modify(to: .error, remote: nil)
        for index in unhandledCompletions { account(completions[index]) }
        unhandledCompletions = 0..<0
        let deadline = ContinuousClock.now.advanced(by: configuration.timeout)
        while sendsInFlight > 0 || receivesInFlight > 0 || rdmaInFlight > 0 {
            let left = deadline - ContinuousClock.now
            // Flushes report promptly; the queue's channel lets the thread sleep until they do.
            let polled = left > .zero ? (try? completionQueue.wait(into: completions, timeout: left)) ?? 0 : 0
            for index in 0..<polled { account(completions[index]) }
            if polled == 0 { break }
        }
        do {
            try queuePair.close()
        } catch {
            teardownError = error
            return
        }
        // With the queue pair gone the device touches none of this memory any more,
        // and what never reported never will.
        for slot in 0..<sendSlotCount where sendInFlight[slot] { releaseSendSlot(slot) }
        discardStagedSends()
        for slot in 0..<receiveSlotCount { receivePosted[slot] = false }
        sendsInFlight = 0
        receivesInFlight = 0
        rdmaInFlight = 0
        for slot in rdmaSlotInFlight.indices { rdmaSlotInFlight[slot] = false }
        parkedReceives.removeAll()
        try? arenaRegion.deregister()
        try? completionQueue.close()
        arena.deallocate()
        sendRegistrations.flush()
        inbox.removeAll()
        inboxHead = 0
        inboxBytes = 0
    }
}

import Glibc
import Locking
import RDMASGE
import SoftVerbs
import Testing

// Every test binds its listeners to an address of its own (127.0.0.N, or port 4791 on
// a wildcard), so that tests running in parallel never reach each other's listeners
// in the process-wide address space.

@Suite("SoftVerbs connections")
struct SoftConnectionTests {
    let device = SoftVerbs()
    let domain: SoftProtectionDomain

    init() throws { domain = try device.allocateProtectionDomain() }

    @Test("connect and accept exchange private data both ways, cap depths, and the queue pairs move SEND and RDMA WRITE")
    func connectAndAccept() throws {
        let listener = try SoftListener(device: device, host: "127.0.0.1")
        let client = try ConnectionEndpoint(domain), server = try ConnectionEndpoint(domain)
        let request = ConnectionParameters(privateData: [1, 2, 3], responderResources: 4, initiatorDepth: 2, retryCount: 5)
        let port = listener.port
        let connecting = Spawned {
            try SoftConnection.connect(to: "127.0.0.1", port: port, queuePair: client.pair, parameters: request, timeout: .seconds(10))
        }
        let taken = try #require(try listener.accept(timeout: .seconds(10)))
        #expect(taken.peerParameters == request)
        #expect(taken.peerHost == "127.0.0.1")
        let replyData = (0..<ConnectionParameters.maxReplyPrivateData).map { UInt8(truncatingIfNeeded: $0 * 7) }
        let reply = ConnectionParameters(privateData: replyData, responderResources: 8, initiatorDepth: 8)
        let accepted = try taken.accept(server.pair, parameters: reply, timeout: .seconds(10))
        let connected = try connecting.join()

        #expect(accepted.peerParameters == request, "the accepting side sees what the requester sent")
        #expect(connected.peerParameters.privateData == replyData)
        #expect(connected.peerParameters.initiatorDepth == 4, "capped by the requester's responder resources")
        #expect(connected.peerParameters.responderResources == 2, "capped by the requester's initiator depth")
        #expect(client.pair.state == .readyToSend && server.pair.state == .readyToSend)
        #expect(connected.queuePair === client.pair && accepted.queuePair === server.pair)
        for connection in [connected, accepted] {
            #expect(EventedPair.isReadable(connection.eventFileDescriptor))
            #expect(connection.takeEvent() == .established)
            #expect(connection.takeEvent() == nil)
            #expect(!EventedPair.isReadable(connection.eventFileDescriptor), "drained once the queue is empty")
        }

        // SEND from the client into the server's posted receive.
        try server.receive(id: 7)
        client.fill(0xA5, length: 100)
        try client.send(id: 1, length: 100)
        let received = try #require(try server.queue.poll())
        #expect(received.id == 7 && received.status == .success && received.opcode == .receive && received.byteCount == 100)
        #expect(server.bytes(0, 100) == Array(repeating: 0xA5, count: 100))
        #expect(try client.queue.poll()?.status == .success)

        // RDMA WRITE from the server into the client's buffer.
        server.fill(0x3C, offset: 512, length: 64)
        try server.send(id: 2, opcode: .rdmaWrite, offset: 512, length: 64, remoteAddress: client.address + 4096,
                        rkey: client.region.rkey)
        let written = try #require(try server.queue.poll())
        #expect(written.id == 2 && written.status == .success && written.opcode == .rdmaWrite)
        #expect(client.bytes(4096, 64) == Array(repeating: 0x3C, count: 64))
        #expect(connected.takeEvent() == nil && accepted.takeEvent() == nil, "moving data raises no connection event")
        listener.close()
    }

    @Test("IPv6: a listener on ::1 takes a connection to ::1; :: takes IPv6 and IPv4 connections; no address, no listener")
    func ipv6() throws {
        let listener = try SoftListener(device: device, host: "::1")
        let client = try ConnectionEndpoint(domain), server = try ConnectionEndpoint(domain)
        let (connected, accepted) = try establish(listener, host: "::1", client: client, server: server)
        #expect(connected.takeEvent() == .established && accepted.takeEvent() == .established)
        #expect(server.pair.state == .readyToSend)

        let any = try SoftListener(device: device, host: "::", port: 4791)
        for host in ["::1", "127.0.0.9"] {
            let client = try ConnectionEndpoint(domain), server = try ConnectionEndpoint(domain)
            let connection = try establish(any, host: host, client: client, server: server)
            #expect(connection.client.queuePair.state == .readyToSend, "\(host) reaches the wildcard listener")
        }
        #expect(failure { try SoftListener(device: device, host: "localhost") }?.errno == EINVAL)
        #expect(failure { try SoftListener(device: device, host: "::1::2") }?.errno == EINVAL)
        let refused = failure {
            try SoftConnection.connect(to: "127.1", port: 4791, queuePair: client.pair, parameters: ConnectionParameters(),
                                       timeout: .seconds(1))
        }
        #expect(refused?.errno == EINVAL && refused?.call == .resolveAddress)
    }

    @Test("port 0 picks a free port from 49152 up; binding a bound port, or a wildcard over it, fails with EADDRINUSE")
    func portZero() throws {
        let first = try SoftListener(device: device, host: "127.0.0.2")
        #expect(first.port >= 49152)
        let taken = failure { try SoftListener(device: device, host: "127.0.0.2", port: first.port) }
        #expect(taken?.errno == EADDRINUSE && taken?.call == .bindAddress)
        #expect(failure { try SoftListener(device: device, host: "0.0.0.0", port: first.port) }?.errno == EADDRINUSE)
        #expect(failure { try SoftListener(device: SoftVerbs(), host: "127.0.0.2", port: first.port) }?.errno == EADDRINUSE,
                "the address space is the process's, not the device's")
        let second = try SoftListener(device: device, host: "127.0.0.2")
        #expect(second.port != first.port)
        let other = try SoftListener(device: device, host: "127.0.0.3", port: first.port)
        #expect(other.port == first.port, "another address is another name")
    }

    @Test("nothing listening refuses with ECONNREFUSED and an empty rejection; a listener of another device with EINVAL")
    func nothingListening() throws {
        let client = try ConnectionEndpoint(domain)
        let refused = failure {
            try SoftConnection.connect(to: "127.0.0.4", port: 7, queuePair: client.pair, parameters: ConnectionParameters(),
                                       timeout: .seconds(1))
        }
        #expect(refused?.errno == ECONNREFUSED && refused?.call == .connect)
        #expect(refused?.connectionEvent == .rejected(privateData: []))
        #expect(client.pair.state == .reset)

        let elsewhere = try SoftListener(device: SoftVerbs(), host: "127.0.0.4")
        let mismatch = failure {
            try SoftConnection.connect(to: "127.0.0.4", port: elsewhere.port, queuePair: client.pair,
                                       parameters: ConnectionParameters(), timeout: .seconds(1))
        }
        #expect(mismatch?.errno == EINVAL)
        #expect(try elsewhere.takeRequest() == nil, "nothing was queued")
    }

    @Test("a rejection carries its private data to the requester's ECONNREFUSED; a released request is rejected")
    func reject() throws {
        let listener = try SoftListener(device: device, host: "127.0.0.5")
        let client = try ConnectionEndpoint(domain)
        let port = listener.port, pair = client.pair
        let attempt = { @Sendable () -> Spawned<SoftConnection> in
            Spawned {
                try SoftConnection.connect(to: "127.0.0.5", port: port, queuePair: pair, parameters: ConnectionParameters(),
                                           timeout: .seconds(10))
            }
        }
        let connecting = attempt()
        let request = try #require(try listener.accept(timeout: .seconds(10)))
        let tooMuch = [UInt8](repeating: 1, count: ConnectionParameters.maxRejectPrivateData + 1)
        #expect(failure { try request.reject(privateData: tooMuch) }?.errno == EINVAL)
        try request.reject(privateData: [9, 8, 7])
        let rejected = failure { try connecting.join() }
        #expect(rejected?.errno == ECONNREFUSED)
        #expect(rejected?.connectionEvent == .rejected(privateData: [9, 8, 7]))
        #expect(client.pair.state == .reset)
        #expect(failure { try request.reject(privateData: []) }?.errno == EINVAL, "already answered")
        let server = try ConnectionEndpoint(domain)
        #expect(failure { try request.accept(server.pair, parameters: ConnectionParameters(), timeout: .seconds(1)) }?.errno == EINVAL)
        #expect(server.pair.state == .reset)

        let abandoned = attempt()
        _ = try #require(try listener.accept(timeout: .seconds(10)))
        let dropped = failure { try abandoned.join() }
        #expect(dropped?.errno == ECONNREFUSED && dropped?.connectionEvent == .rejected(privateData: []))
    }

    @Test("no answer within the timeout: ETIMEDOUT, the request is withdrawn, the queue pair stays in RESET")
    func timeout() throws {
        let listener = try SoftListener(device: device, host: "127.0.0.6")
        let client = try ConnectionEndpoint(domain), server = try ConnectionEndpoint(domain)
        let start = ContinuousClock.now
        let timedOut = failure {
            try SoftConnection.connect(to: "127.0.0.6", port: listener.port, queuePair: client.pair,
                                       parameters: ConnectionParameters(), timeout: .milliseconds(100))
        }
        #expect(timedOut?.errno == ETIMEDOUT && timedOut?.call == .connect)
        #expect(ContinuousClock.now - start >= .milliseconds(100))
        #expect(client.pair.state == .reset)
        #expect(!EventedPair.isReadable(listener.eventFileDescriptor), "the withdrawn request left nothing to wake a loop")
        #expect(try listener.takeRequest() == nil)

        // Taken but not answered in time: the accept that comes too late is aborted.
        let port = listener.port, pair = client.pair
        let connecting = Spawned {
            try SoftConnection.connect(to: "127.0.0.6", port: port, queuePair: pair, parameters: ConnectionParameters(),
                                       timeout: .milliseconds(100))
        }
        let request = try #require(try listener.accept(timeout: .seconds(10)))
        #expect(failure { try connecting.join() }?.errno == ETIMEDOUT)
        let aborted = failure { try request.accept(server.pair, parameters: ConnectionParameters(), timeout: .seconds(1)) }
        #expect(aborted?.errno == ECONNABORTED)
        #expect(client.pair.state == .reset && server.pair.state == .reset)
        try request.reject(privateData: [1])
    }

    @Test("parameters over their limits, or a queue pair not in RESET, fail with EINVAL and change nothing")
    func parametersOverLimit() throws {
        let listener = try SoftListener(device: device, host: "127.0.0.7")
        let client = try ConnectionEndpoint(domain), server = try ConnectionEndpoint(domain)
        func connect(_ parameters: ConnectionParameters, _ pair: SoftQueuePair) -> VerbsError? {
            failure { try SoftConnection.connect(to: "127.0.0.7", port: listener.port, queuePair: pair, parameters: parameters,
                                                 timeout: .seconds(1)) }
        }
        let longRequest = ConnectionParameters(privateData: Array(repeating: 1, count: ConnectionParameters.maxRequestPrivateData + 1))
        #expect(connect(longRequest, client.pair)?.errno == EINVAL)
        #expect(connect(ConnectionParameters(retryCount: 8), client.pair)?.errno == EINVAL)
        #expect(connect(ConnectionParameters(initiatorDepth: -1), client.pair)?.errno == EINVAL)
        let busy = try ConnectionEndpoint(domain)
        try busy.pair.modify(to: .initialized, remote: nil)
        #expect(connect(ConnectionParameters(), busy.pair)?.errno == EINVAL)
        #expect(busy.pair.state == .initialized)
        #expect(client.pair.state == .reset)
        #expect(!EventedPair.isReadable(listener.eventFileDescriptor), "nothing was queued")
        #expect(try listener.takeRequest() == nil)

        let port = listener.port, pair = client.pair
        let limit = Array(repeating: UInt8(2), count: ConnectionParameters.maxRequestPrivateData)
        let connecting = Spawned {
            try SoftConnection.connect(to: "127.0.0.7", port: port, queuePair: pair,
                                       parameters: ConnectionParameters(privateData: limit), timeout: .seconds(10))
        }
        let request = try #require(try listener.accept(timeout: .seconds(10)))
        #expect(request.peerParameters.privateData == limit, "exactly the limit is fine")
        let longReply = ConnectionParameters(privateData: Array(repeating: 1, count: ConnectionParameters.maxReplyPrivateData + 1))
        #expect(failure { try request.accept(server.pair, parameters: longReply, timeout: .seconds(1)) }?.errno == EINVAL)
        #expect(failure { try request.accept(busy.pair, parameters: ConnectionParameters(), timeout: .seconds(1)) }?.errno == EINVAL)
        #expect(server.pair.state == .reset && client.pair.state == .reset && busy.pair.state == .initialized)
        let other = SoftVerbs()
        let foreign = try ConnectionEndpoint(try other.allocateProtectionDomain())
        #expect(failure { try request.accept(foreign.pair, parameters: ConnectionParameters(), timeout: .seconds(1)) }?.errno == EINVAL)
        let accepted = try request.accept(server.pair, parameters: ConnectionParameters(), timeout: .seconds(1))
        let connected = try connecting.join()
        #expect(connected.queuePair.state == .readyToSend && accepted.queuePair.state == .readyToSend,
                "the refused accepts left the request answerable")
    }

    @Test("disconnect: both sides see .disconnected (nextEvent and for-await), posted receives flush, once only")
    func disconnect() async throws {
        let listener = try SoftListener(device: device, host: "127.0.0.8")
        let client = try ConnectionEndpoint(domain), server = try ConnectionEndpoint(domain)
        let (connected, accepted) = try establish(listener, host: "127.0.0.8", client: client, server: server)
        try server.receive(id: 11)
        try client.receive(id: 12)
        connected.disconnect()
        #expect(client.pair.state == .error && server.pair.state == .error)
        #expect(try accepted.nextEvent(timeout: .seconds(5)) == .established)
        #expect(try accepted.nextEvent(timeout: .seconds(5)) == .disconnected)
        var seen: [ConnectionEvent] = []
        for try await event in connected.events() { seen.append(event) }
        #expect(seen == [.established, .disconnected], "the sequence ends after .disconnected")
        let flushed = try #require(try server.queue.poll())
        #expect(flushed.id == 11 && flushed.status == .workRequestFlushError)
        #expect(try client.queue.poll()?.status == .workRequestFlushError)

        accepted.disconnect()
        connected.disconnect()
        #expect(try accepted.nextEvent(timeout: .milliseconds(20)) == nil, "a second disconnect does nothing")
        #expect(connected.takeEvent() == nil)
        #expect(!EventedPair.isReadable(accepted.eventFileDescriptor))
    }

    @Test("releasing a connection that is still up disconnects it")
    func releaseDisconnects() throws {
        let listener = try SoftListener(device: device, host: "127.0.0.10")
        let client = try ConnectionEndpoint(domain), server = try ConnectionEndpoint(domain)
        var connected: SoftConnection?
        let accepted: SoftConnection
        do {
            let (requester, acceptor) = try establish(listener, host: "127.0.0.10", client: client, server: server)
            (connected, accepted) = (requester, acceptor)
        }
        #expect(connected?.takeEvent() == .established)
        connected = nil
        #expect(accepted.takeEvent() == .established)
        #expect(accepted.takeEvent() == .disconnected)
        #expect(server.pair.state == .error)
    }

    @Test("an accept whose queue pair moves fail puts both queue pairs back in RESET; the requester sees a connection error")
    func failedAccept() throws {
        let listener = try SoftListener(device: device, host: "127.0.0.15")
        let client = try ConnectionEndpoint(domain), server = try ConnectionEndpoint(domain)
        let port = listener.port, pair = client.pair
        let connecting = Spawned {
            try SoftConnection.connect(to: "127.0.0.15", port: port, queuePair: pair, parameters: ConnectionParameters(),
                                       timeout: .seconds(10))
        }
        let request = try #require(try listener.accept(timeout: .seconds(10)))
        try client.pair.modify(to: .initialized, remote: nil)  // the requester's queue pair can no longer go RESET → INIT
        let failed = failure { try request.accept(server.pair, parameters: ConnectionParameters(), timeout: .seconds(1)) }
        #expect(failed?.errno == EINVAL && failed?.call == .accept)
        #expect(client.pair.state == .reset && server.pair.state == .reset)
        let refused = failure { try connecting.join() }
        #expect(refused?.errno == ECONNREFUSED && refused?.connectionEvent == .connectionError)
    }

    @Test("releasing an old connection leaves its queue pair alone once it is reset and connected again")
    func reusedQueuePair() throws {
        let listener = try SoftListener(device: device, host: "127.0.0.16")
        let client = try ConnectionEndpoint(domain), first = try ConnectionEndpoint(domain), second = try ConnectionEndpoint(domain)
        var old: (client: SoftConnection, server: SoftConnection)? = try establish(listener, host: "127.0.0.16", client: client,
                                                                                  server: first)
        try client.pair.modify(to: .reset, remote: nil)
        try first.pair.modify(to: .reset, remote: nil)
        let new = try establish(listener, host: "127.0.0.16", client: client, server: second)
        #expect(old?.client.takeEvent() == .established)
        old = nil
        #expect(client.pair.state == .readyToSend && second.pair.state == .readyToSend, "the new connection is untouched")
        #expect(first.pair.state == .reset)
        #expect(new.client.takeEvent() == .established && new.client.takeEvent() == nil)
    }

}

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Glibc
import RDMASGE
import SoftVerbs
import Testing

@Suite("QueuePairEndpoint: the Codable endpoint two sides exchange")
struct QueuePairEndpointTests {
    static let sample = QueuePairEndpoint(
        number: 0x11, packetSequenceNumber: 0x8b_6d07, lid: 0x1234,
        gid: [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0x02, 0x50, 0x56, 0xff, 0xfe, 0x9a, 0x0b, 0xcd], mtu: .bytes1024)

    /// The sample's JSON fields, in the order `JSONEncoder` with sorted keys writes them.
    static let sampleFields: [(key: String, value: String)] = [
        ("gid", #""fe80:0000:0000:0000:0250:56ff:fe9a:0bcd""#), ("lid", "4660"), ("mtu", "1024"), ("psn", "9137415"),
        ("qpn", "17"),
    ]

    /// The sample's JSON with `key`'s value replaced by `value` (JSON text), or without
    /// `key` when `value` is `nil`.
    static func sampleJSON(replacing key: String = "", with value: String? = nil) -> String {
        "{" + sampleFields.compactMap { field in
            guard field.key == key else { return "\"\(field.key)\":\(field.value)" }
            return value.map { "\"\(key)\":\($0)" }
        }.joined(separator: ",") + "}"
    }

    static func encode(_ endpoint: QueuePairEndpoint) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return try encoder.encode(endpoint)
    }

    static func decode(_ json: String) throws -> QueuePairEndpoint {
        try JSONDecoder().decode(QueuePairEndpoint.self, from: Data(json.utf8))
    }

    @Test("encodes to the stable JSON shape and decodes back to an equal endpoint")
    func roundTrip() throws {
        let data = try Self.encode(Self.sample)
        #expect(String(decoding: data, as: UTF8.self)
                == #"{"gid":"fe80:0000:0000:0000:0250:56ff:fe9a:0bcd","lid":4660,"mtu":1024,"psn":9137415,"qpn":17}"#)
        #expect(try JSONDecoder().decode(QueuePairEndpoint.self, from: data) == Self.sample)
        // Upper-case hex digits are the same GID.
        #expect(try Self.decode(Self.sampleJSON(replacing: "gid", with: #""FE80:0000:0000:0000:0250:56FF:FE9A:0BCD""#))
                == Self.sample)
        for mtu in PathMTU.allCases {
            var endpoint = Self.sample
            endpoint.mtu = mtu
            endpoint.packetSequenceNumber = QueuePairEndpoint.numberLimit - 1
            #expect(try JSONDecoder().decode(QueuePairEndpoint.self, from: Self.encode(endpoint)) == endpoint)
        }
    }

    @Test("a peer's hostile endpoint is refused when decoding", arguments: [
        ("psn", "16777216"), ("psn", "4294967295"), ("psn", "-1"), ("psn", "\"1\""), ("psn", "1.5"),
        ("qpn", "16777216"), ("lid", "65536"),
        ("mtu", "1500"), ("mtu", "0"), ("mtu", "3"), ("mtu", "8192"), ("mtu", "\"1024\""),
        ("gid", "\"fe80:0000:0000:0000:0250:56ff:fe9a\""), ("gid", "\"fe80:0000:0000:0000:0250:56ff:fe9a:0bcd:0000\""),
        ("gid", "\"fe80:0000:0000:0000:0250:56ff:fe9a:0bc\""), ("gid", "\"fe80:0000:0000:0000:0250:56ff:fe9a:0bcdd\""),
        ("gid", "\"fe80:0000:0000:0000:0250:56ff:fe9a:+bcd\""), ("gid", "\"fe80:0000:0000:0000:0250:56ff:fe9a:0bcg\""),
        ("gid", "\"fe80::0250:56ff:fe9a:0bcd\""), ("gid", "\"\""), ("gid", "[254,128]"),
        ("qpn", nil), ("psn", nil), ("lid", nil), ("gid", nil), ("mtu", nil),
    ] as [(String, String?)])
    func hostileInput(key: String, value: String?) throws {
        // The untouched sample decodes: what fails below fails for the one change.
        #expect(try Self.decode(Self.sampleJSON()) == Self.sample)
        let hostile = Self.sampleJSON(replacing: key, with: value)
        #expect(throws: DecodingError.self, "\(hostile)") { try Self.decode(hostile) }
    }

    @Test("an endpoint whose GID is not 16 bytes does not encode")
    func shortGIDDoesNotEncode() throws {
        var endpoint = Self.sample
        endpoint.gid = Array(endpoint.gid.prefix(15))
        #expect(throws: EncodingError.self) { try Self.encode(endpoint) }
    }

    @Test("PathMTU maps 256 … 4096 bytes to IBV_MTU codes 1 … 5 and orders by size")
    func pathMTU() {
        #expect(PathMTU.allCases.map(\.rawValue) == [256, 512, 1024, 2048, 4096])
        #expect(PathMTU.allCases.map(\.code) == [1, 2, 3, 4, 5])
        #expect((0...6).map { PathMTU(code: $0) } == [nil, .bytes256, .bytes512, .bytes1024, .bytes2048, .bytes4096, nil])
        #expect(min(PathMTU.bytes4096, .bytes1024) == .bytes1024)
    }

    @Test("two SoftVerbs queue pairs connect by exchanging endpoints as JSON and move data")
    func connectThroughJSON() throws {
        let x = try Exchange()
        let (a, b) = (x.verbs.sender, x.verbs.receiver)
        // Each side sees only the bytes the other sent.
        let fromA = try Self.encode(a.endpoint)
        let fromB = try Self.encode(b.endpoint)
        let remoteOfA = try JSONDecoder().decode(QueuePairEndpoint.self, from: fromB)
        let remoteOfB = try JSONDecoder().decode(QueuePairEndpoint.self, from: fromA)
        #expect(remoteOfA == b.endpoint && remoteOfB == a.endpoint)
        // The fixture connected them; start over from RESET.
        for state in [QueuePairState.reset, .initialized, .readyToReceive, .readyToSend] {
            try a.modify(to: state, remote: state == .readyToReceive ? remoteOfA : nil)
            try b.modify(to: state, remote: state == .readyToReceive ? remoteOfB : nil)
        }
        #expect(a.state == .readyToSend && b.state == .readyToSend)
        try x.verbs.receive([x.destinationSGE(0, 4096)])
        try x.verbs.send([x.sourceSGE(100, 3000)])
        #expect(try x.senderCompletions.map(\.status) == [.success])
        #expect(try x.receiverCompletions.map(\.byteCount) == [3000])
        #expect(x.arrived(0, 3000, from: 100))
    }

    @Test("a peer told another PSN drops the packets: the send's retries run out")
    func mismatchedPSN() throws {
        let x = try Exchange()
        let (a, b) = (x.verbs.sender, x.verbs.receiver)
        var staleA = a.endpoint
        staleA.packetSequenceNumber = (staleA.packetSequenceNumber + 1) % QueuePairEndpoint.numberLimit
        // The fixture connected them; start over from RESET.
        for state in [QueuePairState.reset, .initialized, .readyToReceive, .readyToSend] {
            try a.modify(to: state, remote: state == .readyToReceive ? b.endpoint : nil)
            try b.modify(to: state, remote: state == .readyToReceive ? staleA : nil)
        }
        try x.verbs.receive([x.destinationSGE(0, 4096)])
        try x.verbs.send([x.sourceSGE(0, 64)])
        #expect(try x.senderCompletions.map(\.status) == [.retryExceededError])
        #expect(!x.arrived(0, 64, from: 0))
    }

    @Test("RTR refuses a remote endpoint a device would refuse")
    func invalidRemote() throws {
        let verbs = try VerbsPair(connect: false)
        let qp = verbs.sender
        try qp.modify(to: .initialized, remote: nil)
        var remote = verbs.receiver.endpoint
        remote.packetSequenceNumber = QueuePairEndpoint.numberLimit
        #expect(throws: VerbsError(.modifyQueuePair, errno: EINVAL, "")) { try qp.modify(to: .readyToReceive, remote: remote) }
        remote = verbs.receiver.endpoint
        remote.number = QueuePairEndpoint.numberLimit
        #expect(throws: VerbsError(.modifyQueuePair, errno: EINVAL, "")) { try qp.modify(to: .readyToReceive, remote: remote) }
        remote = verbs.receiver.endpoint
        remote.gid += [0]
        #expect(throws: VerbsError(.modifyQueuePair, errno: EINVAL, "")) { try qp.modify(to: .readyToReceive, remote: remote) }
        #expect(qp.state == .initialized)
        try qp.modify(to: .readyToReceive, remote: verbs.receiver.endpoint)
        #expect(qp.state == .readyToReceive)
    }

    @Test("each queue pair starts at a random 24-bit PSN")
    func randomPSN() throws {
        let verbs = try VerbsPair(connect: false)
        let queue = try verbs.domain.createCompletionQueue(capacity: 16 * 4)
        let capabilities = QueuePairCapabilities(maxSendWorkRequests: 2, maxReceiveWorkRequests: 2)
        let pairs = try (0..<16).map { _ in
            try verbs.domain.createQueuePair(sendCompletions: queue, receiveCompletions: queue, capabilities: capabilities)
        }
        let numbers = pairs.map(\.endpoint.packetSequenceNumber)
        #expect(numbers.allSatisfy { $0 < QueuePairEndpoint.numberLimit })
        // Sixteen draws from 2^24 values share one value with probability 2^-360.
        #expect(Set(numbers).count > 1, "\(numbers)")
        #expect(pairs.map(\.endpoint.packetSequenceNumber) == numbers, "a queue pair's PSN stays what it was")
        for pair in pairs { try pair.close() }
    }
}

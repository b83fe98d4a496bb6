import SMBDirect
import Testing
import IterExtract

/// The encodings of MS-SMBD 2.2 with the example values of MS-SMBD 4.1, and seeded
/// round trips.
@Suite("MS-SMBD codec conformance")
struct CodecConformanceTests {
    func encoded(_ size: Int, _ encode: (UnsafeMutableRawBufferPointer) -> Int) -> [UInt8] {
        var bytes = [UInt8](repeating: 0xEE, count: size + 8)
        let written = bytes.withUnsafeMutableBytes(encode)
        #expect(written == size)
        #expect(bytes[size...].allSatisfy { $0 == 0xEE }, "the encoder wrote past its message")
        return Array(bytes[..<size])
    }

    @Test("the Negotiate Request of MS-SMBD 4.1 encodes to its 20 bytes and back")
    func negotiateRequest() throws {
        let request = SMBDirectNegotiateRequest(creditsRequested: 10, preferredSendSize: 1024, maxReceiveSize: 1024,
                                                maxFragmentedSize: 0x20000)
        let bytes = encoded(20) { request.encode(into: $0) }
        #expect(bytes == [0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x0A, 0x00,
                          0x00, 0x04, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00])
        let decoded = try bytes.withUnsafeBytes { try SMBDirectNegotiateRequest(decoding: $0) }
        #expect(decoded == request)
    }

    @Test("the Negotiate Response of MS-SMBD 4.1 encodes to its 32 bytes and back")
    func negotiateResponse() throws {
        let response = SMBDirectNegotiateResponse(creditsRequested: 10, creditsGranted: 10, maxReadWriteSize: 0x100000,
                                                  preferredSendSize: 1024, maxReceiveSize: 1024, maxFragmentedSize: 0x20000)
        let bytes = encoded(32) { response.encode(into: $0) }
        #expect(bytes == [0x00, 0x01, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x0A, 0x00, 0x0A, 0x00,
                          0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x04, 0x00, 0x00,
                          0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00])
        let decoded = try bytes.withUnsafeBytes { try SMBDirectNegotiateResponse(decoding: $0) }
        #expect(decoded == response)
    }

    @Test("a Data Transfer message puts its payload at DataOffset 0x18, after 4 bytes of padding")
    func dataTransfer() throws {
        let header = SMBDirectDataTransfer(creditsRequested: 10, creditsGranted: 10, remainingDataLength: 0, dataLength: 0x6C)
        let bytes = encoded(24) { header.encode(into: $0) }
        #expect(bytes == [0x0A, 0x00, 0x0A, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                          0x18, 0x00, 0x00, 0x00, 0x6C, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00])
        let message = bytes + [UInt8](repeating: 0xAB, count: 0x6C)
        let decoded = try message.withUnsafeBytes {
            try SMBDirectDataTransfer(decoding: $0, maxReceiveSize: 1024, maxFragmentedSize: 0x20000)
        }
        #expect(decoded == header)
        #expect(decoded.payloadRange == 24..<24 + 0x6C)
    }

    @Test("a Data Transfer message without payload is 20 bytes with DataOffset 0; a keepalive sets RESPONSE_REQUESTED")
    func emptyDataTransfer() throws {
        let keepalive = SMBDirectDataTransfer(creditsRequested: 255, creditsGranted: 3, flags: .responseRequested)
        let bytes = encoded(20) { keepalive.encode(into: $0) }
        #expect(bytes == [0xFF, 0x00, 0x03, 0x00, 0x01, 0x00, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])
        let decoded = try bytes.withUnsafeBytes { try SMBDirectDataTransfer(decoding: $0, maxReceiveSize: 1024, maxFragmentedSize: 0x20000) }
        #expect(decoded.flags == .responseRequested)
        #expect(decoded.payloadRange.isEmpty)
    }

    @Test("a Buffer Descriptor V1 is offset (u64), token (u32), length (u32), little-endian")
    func bufferDescriptor() throws {
        let descriptor = BufferDescriptorV1(offset: 0x1122_3344_5566_7788, token: 0xAABB_CCDD, length: 0x0010_0000)
        let bytes = encoded(16) { descriptor.encode(into: $0) }
        #expect(bytes == [0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11, 0xDD, 0xCC, 0xBB, 0xAA, 0x00, 0x00, 0x10, 0x00])
        var list: [BufferDescriptorV1] = []
        let total = try (bytes + bytes).withUnsafeBytes { try BufferDescriptorV1.decodeList($0, into: &list, maxTotalLength: 1 << 21) }
        #expect(list == [descriptor, descriptor])
        #expect(total == 2 << 20)
    }

    @Test("seeded random messages survive encode then decode unchanged", arguments: 0..<8)
    func roundTrips(seed: UInt64) throws {
        var random = SplitMix64(seed: seed)
        func value<T: FixedWidthInteger>(_ range: ClosedRange<T>) -> T { T.random(in: range, using: &random) }
        for _ in 0..<200 {
            let request = SMBDirectNegotiateRequest(
                minVersion: value(0...0x0100), maxVersion: value(0x0100...0xFFFF), creditsRequested: value(1...0xFFFF),
                preferredSendSize: value(1...UInt32.max), maxReceiveSize: value(128...UInt32.max),
                maxFragmentedSize: value(131_072...UInt32.max))
            let requestBytes = encoded(20) { request.encode(into: $0) }
            #expect(try requestBytes.withUnsafeBytes { try SMBDirectNegotiateRequest(decoding: $0) } == request)

            let response = SMBDirectNegotiateResponse(
                minVersion: value(0...0x0100), maxVersion: value(0x0100...0xFFFF), creditsRequested: value(1...0xFFFF),
                creditsGranted: value(1...0xFFFF), maxReadWriteSize: value(1...UInt32.max), preferredSendSize: value(1...UInt32.max),
                maxReceiveSize: value(128...UInt32.max), maxFragmentedSize: value(131_072...UInt32.max))
            let responseBytes = encoded(32) { response.encode(into: $0) }
            #expect(try responseBytes.withUnsafeBytes { try SMBDirectNegotiateResponse(decoding: $0) } == response)

            let length: UInt32 = value(0...2000)
            let header = SMBDirectDataTransfer(
                creditsRequested: value(0...0xFFFF), creditsGranted: value(0...0xFFFF),
                flags: SMBDirectDataTransfer.Flags(rawValue: value(0...1)),
                remainingDataLength: length == 0 ? 0 : value(0...100_000), dataLength: length)
            var message = encoded(header.encodedSize) { header.encode(into: $0) }
            message += [UInt8](repeating: 0x5A, count: Int(length))
            let decoded = try message.withUnsafeBytes {
                try SMBDirectDataTransfer(decoding: $0, maxReceiveSize: 4096, maxFragmentedSize: 1 << 20)
            }
            #expect(decoded == header)
            #expect(decoded.payloadRange.count == Int(length))

            let descriptor = BufferDescriptorV1(offset: value(0...UInt64.max), token: value(0...UInt32.max), length: value(1...UInt32.max))
            let descriptorBytes = encoded(16) { descriptor.encode(into: $0) }
            #expect(try descriptorBytes.withUnsafeBytes { try BufferDescriptorV1(decoding: $0) } == descriptor)
        }
    }
}

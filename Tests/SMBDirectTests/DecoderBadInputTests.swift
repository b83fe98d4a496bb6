import SMBDirect
import Testing

/// Input a receiver must refuse, each with its typed error; and no decoder reads past its input.
@Suite("MS-SMBD decoder bad input")
struct DecoderBadInputTests {
    let request: [UInt8] = {
        var bytes = [UInt8](repeating: 0, count: 20)
        bytes.withUnsafeMutableBytes {
            _ = SMBDirectNegotiateRequest(creditsRequested: 10, preferredSendSize: 1024, maxReceiveSize: 1024,
                                          maxFragmentedSize: 0x20000).encode(into: $0)
        }
        return bytes
    }()
    let response: [UInt8] = {
        var bytes = [UInt8](repeating: 0, count: 32)
        bytes.withUnsafeMutableBytes {
            _ = SMBDirectNegotiateResponse(creditsRequested: 10, creditsGranted: 10, maxReadWriteSize: 1 << 20,
                                           preferredSendSize: 1024, maxReceiveSize: 1024, maxFragmentedSize: 0x20000).encode(into: $0)
        }
        return bytes
    }()

    func decodeRequest(_ bytes: [UInt8]) throws -> SMBDirectNegotiateRequest {
        try bytes.withUnsafeBytes { raw in try SMBDirectNegotiateRequest(decoding: raw) }
    }

    func decodeResponse(_ bytes: [UInt8]) throws -> SMBDirectNegotiateResponse {
        try bytes.withUnsafeBytes { raw in try SMBDirectNegotiateResponse(decoding: raw) }
    }

    func decodeData(_ bytes: [UInt8], maxReceiveSize: Int = 1024, maxFragmentedSize: Int = 0x20000) throws -> SMBDirectDataTransfer {
        try bytes.withUnsafeBytes { raw in
            try SMBDirectDataTransfer(decoding: raw, maxReceiveSize: maxReceiveSize, maxFragmentedSize: maxFragmentedSize)
        }
    }

    func patched(_ bytes: [UInt8], _ offset: Int, _ values: [UInt8]) -> [UInt8] {
        var copy = bytes
        copy.replaceSubrange(offset..<offset + values.count, with: values)
        return copy
    }

    /// Every prefix of a valid message is exactly as long as its buffer, so a read past it would trap.
    @Test("every truncation of every message type is refused as truncated")
    func truncations() {
        for length in 0..<20 {
            #expect(throws: SMBDirectDecodingError.truncated(needed: 20, available: length)) { try decodeRequest(Array(request[..<length])) }
            #expect(throws: SMBDirectDecodingError.truncated(needed: 20, available: length)) { try decodeData(Array(request[..<length])) }
        }
        for length in 0..<32 {
            #expect(throws: SMBDirectDecodingError.truncated(needed: 32, available: length)) { try decodeResponse(Array(response[..<length])) }
        }
        for length in 0..<16 {
            #expect(throws: SMBDirectDecodingError.truncated(needed: 16, available: length)) {
                try Array(response[..<length]).withUnsafeBytes { raw in try BufferDescriptorV1(decoding: raw) }
            }
        }
    }

    @Test("a version range without 0x0100 is refused")
    func badVersions() {
        #expect(throws: SMBDirectDecodingError.unsupportedVersion(min: 0x0200, max: 0x0300)) {
            try decodeRequest(patched(request, 0, [0x00, 0x02, 0x00, 0x03]))
        }
        #expect(throws: SMBDirectDecodingError.unsupportedVersion(min: 0x0100, max: 0x00FF)) {
            try decodeRequest(patched(request, 0, [0x00, 0x01, 0xFF, 0x00]))
        }
        #expect(throws: SMBDirectDecodingError.invalidNegotiatedVersion(0x0200)) { try decodeResponse(patched(response, 4, [0x00, 0x02])) }
        #expect(throws: SMBDirectDecodingError.negotiationRefused(status: 0xC000_00BB)) {
            try decodeResponse(patched(response, 12, [0xBB, 0x00, 0x00, 0xC0]))
        }
    }

    @Test("zero credits and sizes below the minimums are refused")
    func badFields() {
        #expect(throws: SMBDirectDecodingError.invalidField(.creditsRequested, value: 0)) { try decodeRequest(patched(request, 6, [0, 0])) }
        #expect(throws: SMBDirectDecodingError.invalidField(.maxReceiveSize, value: 127)) { try decodeRequest(patched(request, 12, [127, 0, 0, 0])) }
        #expect(throws: SMBDirectDecodingError.invalidField(.maxFragmentedSize, value: 0x1FFFF)) {
            try decodeRequest(patched(request, 16, [0xFF, 0xFF, 0x01, 0x00]))
        }
        #expect(throws: SMBDirectDecodingError.invalidField(.creditsGranted, value: 0)) { try decodeResponse(patched(response, 10, [0, 0])) }
        #expect(throws: SMBDirectDecodingError.invalidField(.creditsRequested, value: 0)) { try decodeResponse(patched(response, 8, [0, 0])) }
        #expect(throws: SMBDirectDecodingError.invalidField(.maxReceiveSize, value: 64)) { try decodeResponse(patched(response, 24, [64, 0, 0, 0])) }
    }

    /// A Data Transfer message of `total` bytes with the given fields (and zero padding).
    private func dataMessage(offset: UInt32, length: UInt32, remaining: UInt32 = 0, creditsRequested: UInt16 = 1,
                             total: Int = 64) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: total)
        bytes.withUnsafeMutableBytes {
            $0.storeBytes(of: creditsRequested.littleEndian, toByteOffset: 0, as: UInt16.self)
            $0.storeBytes(of: remaining.littleEndian, toByteOffset: 8, as: UInt32.self)
            $0.storeBytes(of: offset.littleEndian, toByteOffset: 12, as: UInt32.self)
            $0.storeBytes(of: length.littleEndian, toByteOffset: 16, as: UInt32.self)
        }
        return bytes
    }

    @Test("a Data Transfer message asking for no credits is refused (MS-SMBD 3.1.5.8: CreditsRequested is at least 1)")
    func zeroCreditsRequested() {
        #expect(throws: SMBDirectDecodingError.invalidField(.creditsRequested, value: 0)) {
            try decodeData(dataMessage(offset: 24, length: 8, creditsRequested: 0))
        }
        #expect(throws: SMBDirectDecodingError.invalidField(.creditsRequested, value: 0)) {
            try decodeData(dataMessage(offset: 0, length: 0, creditsRequested: 0, total: 20))
        }
    }

    @Test("a message without payload needs only an aligned DataOffset inside the message, as MS-SMBD 3.1.5.8 checks")
    func emptyMessageOffsets() throws {
        let padded = try decodeData(dataMessage(offset: 24, length: 0))
        #expect(padded.dataLength == 0 && padded.payloadRange.isEmpty)
        var again = [UInt8](repeating: 0xFF, count: padded.encodedSize)
        again.withUnsafeMutableBytes { _ = padded.encode(into: $0) }
        #expect(again == Array(dataMessage(offset: 24, length: 0)[..<24]), "it re-encodes as it came")
        #expect(try decodeData(again) == padded)
        #expect(throws: Never.self) { try decodeData(dataMessage(offset: 0, length: 0, total: 20)) }
        #expect(throws: Never.self) { try decodeData(dataMessage(offset: 64, length: 0)) }
        #expect(throws: SMBDirectDecodingError.misalignedDataOffset(20)) { try decodeData(dataMessage(offset: 20, length: 0)) }
        #expect(throws: SMBDirectDecodingError.payloadOutOfBounds(offset: 72, length: 0, messageLength: 64)) {
            try decodeData(dataMessage(offset: 72, length: 0))
        }
    }

    @Test("bad data offsets and lengths are refused")
    func badOffsets() {
        func message(offset: UInt32, length: UInt32, remaining: UInt32 = 0) -> [UInt8] {
            dataMessage(offset: offset, length: length, remaining: remaining)
        }
        #expect(throws: SMBDirectDecodingError.misalignedDataOffset(20)) { try decodeData(message(offset: 20, length: 4)) }
        #expect(throws: SMBDirectDecodingError.misalignedDataOffset(16)) { try decodeData(message(offset: 16, length: 4)) }
        #expect(throws: SMBDirectDecodingError.payloadOutOfBounds(offset: 24, length: 41, messageLength: 64)) {
            try decodeData(message(offset: 24, length: 41))
        }
        #expect(throws: SMBDirectDecodingError.payloadOutOfBounds(offset: 0xFFFF_FFF8, length: 0xFFFF_FFFF, messageLength: 64)) {
            try decodeData(message(offset: 0xFFFF_FFF8, length: 0xFFFF_FFFF))
        }
        #expect(throws: SMBDirectDecodingError.emptyFragment(remaining: 5)) { try decodeData(message(offset: 0, length: 0, remaining: 5)) }
        #expect(throws: SMBDirectDecodingError.messageTooLong(length: 64, limit: 63)) {
            try decodeData(message(offset: 24, length: 8), maxReceiveSize: 63)
        }
        #expect(throws: SMBDirectDecodingError.fragmentedMessageTooLong(length: 0x20001, limit: 0x20000)) {
            try decodeData(message(offset: 24, length: 8, remaining: 0x20000 - 7))
        }
        #expect(throws: Never.self) { try decodeData(message(offset: 24, length: 40)) }
    }

    @Test("descriptor lists must be whole, non-empty, and within MaxReadWriteSize")
    func badDescriptorLists() throws {
        func decode(_ bytes: [UInt8], limit: Int = 1 << 20) throws -> [BufferDescriptorV1] {
            var list: [BufferDescriptorV1] = [BufferDescriptorV1(offset: 1, token: 2, length: 3)]
            do {
                _ = try bytes.withUnsafeBytes { raw in try BufferDescriptorV1.decodeList(raw, into: &list, maxTotalLength: limit) }
            } catch {
                #expect(list.count == 1, "a failed decode appended descriptors")
                throw error
            }
            return list
        }
        #expect(throws: SMBDirectDecodingError.invalidDescriptorListLength(0)) { try decode([]) }
        #expect(throws: SMBDirectDecodingError.invalidDescriptorListLength(17)) { try decode([UInt8](repeating: 1, count: 17)) }
        let one = [UInt8](repeating: 0, count: 12) + [0x00, 0x10, 0x00, 0x00]
        #expect(throws: SMBDirectDecodingError.transferTooLong(length: 8192, limit: 8191)) { try decode(one + one, limit: 8191) }
        #expect(throws: SMBDirectDecodingError.invalidField(.bufferDescriptorLength, value: 0)) { try decode([UInt8](repeating: 0, count: 16)) }
        let wrapping = [UInt8](repeating: 0xFF, count: 8) + [0, 0, 0, 0] + [0x10, 0, 0, 0]
        #expect(throws: SMBDirectDecodingError.descriptorWraps(offset: .max, length: 16)) { try decode(one + wrapping) }
        let lastByte = [0xFE] + [UInt8](repeating: 0xFF, count: 7) + [0, 0, 0, 0] + [1, 0, 0, 0]
        #expect(try decode(lastByte).count == 2, "a descriptor may end at the top of the address space")
    }
}

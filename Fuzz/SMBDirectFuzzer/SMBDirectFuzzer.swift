import SMBDirect

/// Decodes the input as every MS-SMBD message type and checks what decodes: each
/// re-encodes to the bytes it came from (Reserved and padding aside) and decodes
/// again to the same value, a payload lies inside the message, fragments reassemble
/// within their limit, and descriptor lists re-encode exactly. Any violation, or a
/// read past the input (which traps), crashes the fuzzer. The same bytes also go
/// through every SMB2 decoder, request and response (the client parses responses, the
/// in-process server requests), SMB 3.1.1 negotiate contexts and the NTLMSSP parsers
/// (CHALLENGE, AUTHENTICATE, target information): each must decode or throw,
/// never trap or read past its input.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = UnsafeRawBufferPointer(start: data, count: size)
    checkNegotiateRequest(input)
    checkNegotiateResponse(input)
    checkDataTransfer(input)
    checkDescriptors(input)
    checkSMB2Decoders(Array(input))
    return 0
}

private func check(_ condition: Bool, _ message: @autoclosure () -> String) {
    if !condition { fatalError(message()) }
}

/// Encodes with `encode` into a fresh buffer of `size` bytes.
private func encoded(_ size: Int, _ encode: (UnsafeMutableRawBufferPointer) -> Int) -> [UInt8] {
    var bytes = [UInt8](repeating: 0xEE, count: size)
    let written = bytes.withUnsafeMutableBytes(encode)
    check(written == size, "an encoder wrote \(written) bytes, expected \(size)")
    return bytes
}

/// Whether `bytes` equals the start of `input` outside `ignored`.
private func matches(_ bytes: [UInt8], _ input: UnsafeRawBufferPointer, ignoring ignored: Range<Int>) -> Bool {
    bytes.indices.allSatisfy { ignored.contains($0) || bytes[$0] == input[$0] }
}

private func checkNegotiateRequest(_ input: UnsafeRawBufferPointer) {
    guard let request = try? SMBDirectNegotiateRequest(decoding: input) else { return }
    let bytes = encoded(SMBDirectNegotiateRequest.size) { request.encode(into: $0) }
    check(matches(bytes, input, ignoring: 4..<6), "a Negotiate Request re-encodes differently")
    let again = bytes.withUnsafeBytes { try? SMBDirectNegotiateRequest(decoding: $0) }
    check(again == request, "a Negotiate Request does not survive a round trip")
}

private func checkNegotiateResponse(_ input: UnsafeRawBufferPointer) {
    guard let response = try? SMBDirectNegotiateResponse(decoding: input) else { return }
    let bytes = encoded(SMBDirectNegotiateResponse.size) { response.encode(into: $0) }
    check(matches(bytes, input, ignoring: 6..<8), "a Negotiate Response re-encodes differently")
    let again = bytes.withUnsafeBytes { try? SMBDirectNegotiateResponse(decoding: $0) }
    check(again == response, "a Negotiate Response does not survive a round trip")
}

private func checkDataTransfer(_ input: UnsafeRawBufferPointer) {
    let maxReceiveSize = 8192
    let maxFragmentedSize = 1 << 17
    guard let header = try? SMBDirectDataTransfer(decoding: input, maxReceiveSize: maxReceiveSize,
                                                  maxFragmentedSize: maxFragmentedSize) else { return }
    check(input.count <= maxReceiveSize, "a message longer than the receive size decoded")
    let payload = header.payloadRange
    check(payload.lowerBound >= 0 && payload.upperBound <= input.count, "a payload outside its message")
    check(header.dataLength == 0 || payload.lowerBound % 8 == 0, "a misaligned payload decoded")
    check(Int(header.dataLength) + Int(header.remainingDataLength) <= maxFragmentedSize, "a fragment beyond the limit decoded")
    let bytes = encoded(header.encodedSize) { header.encode(into: $0) }
    check(matches(Array(bytes[..<SMBDirectDataTransfer.headerSize]), input, ignoring: 6..<8),
          "a Data Transfer header re-encodes differently")
    let message = bytes + UnsafeRawBufferPointer(rebasing: input[payload])
    let again = message.withUnsafeBytes {
        try? SMBDirectDataTransfer(decoding: $0, maxReceiveSize: maxReceiveSize, maxFragmentedSize: maxFragmentedSize)
    }
    check(again == header, "a Data Transfer header does not survive a round trip")
    var reassembler = FragmentReassembler(maxMessageSize: maxFragmentedSize)
    let whole = try? reassembler.append(UnsafeRawBufferPointer(rebasing: input[payload]), remaining: header.remainingDataLength)
    if header.dataLength > 0 {
        check((whole == nil) == (header.remainingDataLength > 0), "reassembly finished at the wrong fragment")
        check(whole.map { $0.count == payload.count } ?? true, "a single fragment reassembled to another length")
    }
}

private func checkDescriptors(_ input: UnsafeRawBufferPointer) {
    var list: [BufferDescriptorV1] = []
    guard let total = try? BufferDescriptorV1.decodeList(input, into: &list, maxTotalLength: 1 << 20) else {
        check(list.isEmpty, "a failed descriptor decode appended descriptors")
        return
    }
    check(list.count * BufferDescriptorV1.size == input.count, "descriptors do not fill their list")
    check(total == list.reduce(0) { $0 + Int($1.length) } && total <= 1 << 20, "descriptor lengths do not add up")
    for (index, descriptor) in list.enumerated() {
        let bytes = encoded(BufferDescriptorV1.size) { descriptor.encode(into: $0) }
        check(matches(bytes, UnsafeRawBufferPointer(rebasing: input[index * 16..<(index + 1) * 16]), ignoring: 0..<0),
              "a descriptor re-encodes differently")
    }
}

/// Every SMB2 decoder on the same bytes: a typed error or a value, nothing else.
private func checkSMB2Decoders(_ message: [UInt8]) {
    _ = try? SMB2Header(decoding: message)
    _ = try? SMB2NegotiateRequest(decoding: message)
    _ = try? SMB2NegotiateResponse(decoding: message)
    _ = try? SMB2SessionSetupRequest(decoding: message)
    _ = try? SMB2SessionSetupResponse(decoding: message)
    _ = try? SMB2TreeConnectRequest(decoding: message)
    _ = try? SMB2TreeConnectResponse(decoding: message)
    _ = try? SMB2CreateRequest(decoding: message)
    _ = try? SMB2CreateResponse(decoding: message)
    _ = try? SMB2WriteRequest(decoding: message, maxTransferSize: 1 << 20)
    _ = try? SMB2WriteResponse(decoding: message)
    _ = try? SMB2CloseRequest(decoding: message)
    _ = try? SMB2CloseResponse.validate(message)
    _ = NTLMSSP.messageType(in: message[...])
    _ = NTLMSSP.isAnonymous(message[...])
    _ = try? NTLMChallenge(decoding: message[...])
    _ = try? NTLMAuthenticateMessage(decoding: message[...])
    _ = try? NTLMTargetInfo(decoding: message[...])
    // Negotiate contexts from the start of the input, as many as its first byte says (up to past the limit).
    _ = try? SMB2NegotiateContext.decodeList(from: message, offset: 0, count: Int(message.first ?? 0) % 40, minimumOffset: 0)
}

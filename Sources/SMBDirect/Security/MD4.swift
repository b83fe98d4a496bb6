/// The MD4 message digest (RFC 1320), which NTLM still uses to hash a password into the
/// NT one-way function (MS-NLMP 3.3.1). MD4 is broken as a general-purpose hash; it is here
/// only because the protocol fixes it.
package enum MD4 {
    /// The size of a digest in bytes.
    package static let byteCount = 16

    /// The 16-byte digest of `bytes` (RFC 1320 section 3): the message padded with a one bit,
    /// zeros to 56 bytes modulo 64, and its length in bits as a 64-bit little-endian integer,
    /// then processed 16 words at a time in three rounds.
    package static func hash(_ bytes: some Collection<UInt8>) -> [UInt8] {
        var state = State()
        var block: [UInt8] = []
        block.reserveCapacity(64)
        for byte in bytes {
            block.append(byte)
            if block.count == 64 {
                state.process(block)
                block.removeAll(keepingCapacity: true)
            }
        }
        let bitCount = UInt64(truncatingIfNeeded: bytes.count) &* 8
        block.append(0x80)
        if block.count > 56 {
            block.append(contentsOf: repeatElement(0, count: 64 - block.count))
            state.process(block)
            block.removeAll(keepingCapacity: true)
        }
        block.append(contentsOf: repeatElement(0, count: 56 - block.count))
        withUnsafeBytes(of: bitCount.littleEndian) { block.append(contentsOf: $0) }
        state.process(block)
        return state.digest
    }

    /// The four 32-bit registers A, B, C, D (RFC 1320 section 3.3).
    private struct State {
        var a: UInt32 = 0x6745_2301
        var b: UInt32 = 0xefcd_ab89
        var c: UInt32 = 0x98ba_dcfe
        var d: UInt32 = 0x1032_5476

        /// A, B, C, D, each little-endian, low-order byte first (RFC 1320 section 3.5).
        var digest: [UInt8] {
            var output: [UInt8] = []
            output.reserveCapacity(MD4.byteCount)
            for word in [a, b, c, d] { withUnsafeBytes(of: word.littleEndian) { output.append(contentsOf: $0) } }
            return output
        }

        /// Step 4's three rounds over one 64-byte block (RFC 1320 section 3.4).
        mutating func process(_ block: [UInt8]) {
            var x = [UInt32](repeating: 0, count: 16)
            for index in 0..<16 {
                let base = index * 4
                x[index] = UInt32(block[base]) | UInt32(block[base + 1]) << 8
                    | UInt32(block[base + 2]) << 16 | UInt32(block[base + 3]) << 24
            }
            var (aa, bb, cc, dd) = (a, b, c, d)

            // Round 1: F(X,Y,Z) = XY v not(X) Z, shifts 3, 7, 11, 19, words in order.
            func round1(_ w: inout UInt32, _ x1: UInt32, _ y: UInt32, _ z: UInt32, _ k: Int, _ s: UInt32) {
                w = MD4.rotate(w &+ ((x1 & y) | (~x1 & z)) &+ x[k], s)
            }
            for k in stride(from: 0, to: 16, by: 4) {
                round1(&aa, bb, cc, dd, k, 3)
                round1(&dd, aa, bb, cc, k + 1, 7)
                round1(&cc, dd, aa, bb, k + 2, 11)
                round1(&bb, cc, dd, aa, k + 3, 19)
            }

            // Round 2: G(X,Y,Z) = XY v XZ v YZ plus 0x5A827999, shifts 3, 5, 9, 13, words by column.
            func round2(_ w: inout UInt32, _ x1: UInt32, _ y: UInt32, _ z: UInt32, _ k: Int, _ s: UInt32) {
                w = MD4.rotate(w &+ ((x1 & y) | (x1 & z) | (y & z)) &+ x[k] &+ 0x5a82_7999, s)
            }
            for k in 0..<4 {
                round2(&aa, bb, cc, dd, k, 3)
                round2(&dd, aa, bb, cc, k + 4, 5)
                round2(&cc, dd, aa, bb, k + 8, 9)
                round2(&bb, cc, dd, aa, k + 12, 13)
            }

            // Round 3: H(X,Y,Z) = X xor Y xor Z plus 0x6ED9EBA1, shifts 3, 9, 11, 15, words in bit-reversed order.
            func round3(_ w: inout UInt32, _ x1: UInt32, _ y: UInt32, _ z: UInt32, _ k: Int, _ s: UInt32) {
                w = MD4.rotate(w &+ (x1 ^ y ^ z) &+ x[k] &+ 0x6ed9_eba1, s)
            }
            for k in [0, 2, 1, 3] {
                round3(&aa, bb, cc, dd, k, 3)
                round3(&dd, aa, bb, cc, k + 8, 9)
                round3(&cc, dd, aa, bb, k + 4, 11)
                round3(&bb, cc, dd, aa, k + 12, 15)
            }

            a = a &+ aa
            b = b &+ bb
            c = c &+ cc
            d = d &+ dd
        }

    }

    /// A 32-bit rotation left by `count` bits (RFC 1320's `<<<`).
    private static func rotate(_ value: UInt32, _ count: UInt32) -> UInt32 {
        value << count | value >> (32 - count)
    }
}

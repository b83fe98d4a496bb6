/// A target information list, the AV_PAIR list of MS-NLMP 2.2.2.1: attribute-value pairs,
/// each a 16-bit AvId, a 16-bit AvLen and AvLen bytes, ended by MsvAvEOL. The server puts
/// one in its CHALLENGE; the client copies it, with MsvAvFlags updated, into its NTLMv2
/// client blob.
package struct NTLMTargetInfo: Sendable, Equatable {
    /// One attribute-value pair (not the terminator, which encoding adds).
    package struct Pair: Sendable, Equatable {
        /// The attribute, AvId.
        package var id: UInt16
        /// The value, AvLen bytes.
        package var value: [UInt8]

        /// A pair of attribute `id` and `value`.
        package init(id: UInt16, value: [UInt8]) {
            self.id = id
            self.value = value
        }
    }

    /// MsvAvEOL: the end of the list.
    package static let endOfList: UInt16 = 0
    /// MsvAvNbComputerName: the server's NetBIOS computer name, UTF-16LE.
    package static let nbComputerName: UInt16 = 1
    /// MsvAvNbDomainName: the server's NetBIOS domain name, UTF-16LE.
    package static let nbDomainName: UInt16 = 2
    /// MsvAvFlags: a 32-bit little-endian flag word.
    package static let flagsID: UInt16 = 6
    /// MsvAvTimestamp: the server's time, a 64-bit little-endian FILETIME.
    package static let timestampID: UInt16 = 7
    /// The MsvAvFlags bit saying the AUTHENTICATE carries a MIC.
    package static let micPresentFlag: UInt32 = 0x0000_0002
    /// The most pairs a received list may hold before its terminator. Lists from real
    /// servers hold about ten; the cap bounds the work a hostile peer can ask for.
    package static let maximumPairCount = 64

    /// The pairs in order, without the terminator.
    package var pairs: [Pair]

    /// A list of `pairs` (which must not include MsvAvEOL).
    package init(pairs: [Pair] = []) {
        self.pairs = pairs
    }

    /// Decodes a received list, checking every bound: each pair's header and value lie inside
    /// `bytes`, the list ends with MsvAvEOL (of length 0) before the end of `bytes`, holds at
    /// most ``maximumPairCount`` pairs, and MsvAvFlags and MsvAvTimestamp have their sizes (4
    /// and 8). Bytes after MsvAvEOL are ignored: the NTLMv2 client blob puts four zero bytes
    /// there.
    package init(decoding bytes: ArraySlice<UInt8>) throws(SMB2Error) {
        let reader = SMB2MessageReader(Array(bytes))
        var pairs: [Pair] = []
        var offset = 0
        while true {
            let id = try reader.integer(UInt16.self, at: offset)
            let length = Int(try reader.integer(UInt16.self, at: offset + 2))
            let value = try reader.slice(at: offset + 4, count: length)
            offset += 4 + length
            if id == Self.endOfList {
                guard length == 0 else { throw .malformed("MsvAvEOL with \(length) value bytes") }
                break
            }
            guard pairs.count < Self.maximumPairCount else {
                throw .malformed("a target information list of more than \(Self.maximumPairCount) pairs")
            }
            if id == Self.flagsID, length != 4 { throw .malformed("MsvAvFlags of \(length) bytes") }
            if id == Self.timestampID, length != 8 { throw .malformed("MsvAvTimestamp of \(length) bytes") }
            pairs.append(Pair(id: id, value: Array(value)))
        }
        self.pairs = pairs
    }

    /// The list as sent: every pair, then MsvAvEOL.
    ///
    /// - Precondition: no value is longer than 65,535 bytes.
    package func encoded() -> [UInt8] {
        var writer = SMB2MessageWriter()
        for pair in pairs {
            precondition(pair.value.count <= Int(UInt16.max), "an AV pair value of \(pair.value.count) bytes")
            writer.append(pair.id)
            writer.append(UInt16(pair.value.count))
            writer.append(pair.value)
        }
        writer.append(Self.endOfList)
        writer.append(UInt16(0))
        return writer.bytes
    }

    /// The value of the first pair with attribute `id`.
    package func value(of id: UInt16) -> [UInt8]? {
        pairs.first { $0.id == id }?.value
    }

    /// MsvAvTimestamp, the server's FILETIME, if the list has one.
    package var timestamp: UInt64? {
        value(of: Self.timestampID).map { $0.withUnsafeBytes { $0.loadLittleEndian(UInt64.self, at: 0) } }
    }

    /// MsvAvFlags, if the list has them.
    package var flags: UInt32? {
        value(of: Self.flagsID).map { $0.withUnsafeBytes { $0.loadLittleEndian(UInt32.self, at: 0) } }
    }

    /// This list with `bits` set in MsvAvFlags: the existing pair updated in place, or a new
    /// pair added at the end (just before MsvAvEOL) — how a client marks its copy of the
    /// server's list with ``micPresentFlag``.
    package func settingFlags(_ bits: UInt32) -> NTLMTargetInfo {
        var copy = self
        let flags = (self.flags ?? 0) | bits
        let value = withUnsafeBytes(of: flags.littleEndian) { Array($0) }
        if let index = copy.pairs.firstIndex(where: { $0.id == Self.flagsID }) {
            copy.pairs[index].value = value
        } else {
            copy.pairs.append(Pair(id: Self.flagsID, value: value))
        }
        return copy
    }
}

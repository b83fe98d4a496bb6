/// Builds an SMB2 message (or an NTLMSSP token) field by field, little-endian.
package struct SMB2MessageWriter {
    package private(set) var bytes: [UInt8] = []

    package init(capacity: Int = 128) { bytes.reserveCapacity(capacity) }

    package var count: Int { bytes.count }

    package mutating func append<T: FixedWidthInteger>(_ value: T) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    package mutating func append(_ data: some Collection<UInt8>) { bytes.append(contentsOf: data) }

    package mutating func appendZeros(_ count: Int) { bytes.append(contentsOf: repeatElement(0, count: count)) }

    /// Pads with zeros to a multiple of `alignment`.
    package mutating func align(to alignment: Int) { appendZeros((alignment - bytes.count % alignment) % alignment) }

    /// Overwrites the field at `offset` (written earlier) with `value`.
    package mutating func set<T: FixedWidthInteger>(_ value: T, at offset: Int) {
        bytes.withUnsafeMutableBytes { $0.storeLittleEndian(value, at: offset) }
    }
}

/// Reads fields of a received SMB2 message (or NTLMSSP token), checking every bound.
package struct SMB2MessageReader {
    package let bytes: [UInt8]

    package init(_ bytes: [UInt8]) { self.bytes = bytes }

    package func integer<T: FixedWidthInteger>(_: T.Type, at offset: Int) throws(SMB2Error) -> T {
        guard offset >= 0, offset <= bytes.count - MemoryLayout<T>.size else {
            throw .malformed("a \(MemoryLayout<T>.size)-byte field at \(offset) is past the end (\(bytes.count) bytes)")
        }
        return bytes.withUnsafeBytes { $0.loadLittleEndian(T.self, at: offset) }
    }

    package func slice(at offset: Int, count: Int) throws(SMB2Error) -> ArraySlice<UInt8> {
        guard offset >= 0, count >= 0, offset <= bytes.count - count else {
            throw .malformed("\(count) bytes at \(offset) are past the end (\(bytes.count) bytes)")
        }
        return bytes[offset..<offset + count]
    }

    /// Checks a body's StructureSize at `offset` (MS-SMB2: the fixed part's size, plus 1 when a buffer follows).
    package func expectStructureSize(_ size: UInt16, at offset: Int = SMB2Header.size) throws(SMB2Error) {
        let found = try integer(UInt16.self, at: offset)
        guard found == size else { throw .malformed("StructureSize \(found), expected \(size)") }
    }
}

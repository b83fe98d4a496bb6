/// A running CRC-32C (Castagnoli, reflected polynomial 0x82F63B78) checksum, the
/// one iSCSI, ext4 and SMB Direct use. Table-driven, eight bytes per step
/// ("slicing by 8"). Mirrors the kernel's `crc32c`.
///
/// The checksum of the ASCII bytes "123456789" is 0xE3069283.
public struct CRC32C: Sendable {
    /// The CRC register (inverted, as the algorithm keeps it).
    private var register: UInt32 = 0xFFFF_FFFF

    /// A checksum of no bytes.
    public init() {}

    /// The checksum of `bytes`.
    public init(_ bytes: UnsafeRawBufferPointer) {
        update(bytes)
    }

    /// The checksum of the bytes seen so far.
    public var value: UInt32 { ~register }

    /// Adds `bytes` to the checksum.
    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        var crc = register
        var index = 0
        CRC32C.tables.withUnsafeBufferPointer { table in
            while bytes.count - index >= 8 {
                let low = crc ^ (UInt32(bytes[index]) | UInt32(bytes[index + 1]) << 8
                    | UInt32(bytes[index + 2]) << 16 | UInt32(bytes[index + 3]) << 24)
                crc = table[7 * 256 + Int(low & 0xFF)] ^ table[6 * 256 + Int(low >> 8 & 0xFF)]
                    ^ table[5 * 256 + Int(low >> 16 & 0xFF)] ^ table[4 * 256 + Int(low >> 24)]
                    ^ table[3 * 256 + Int(bytes[index + 4])] ^ table[2 * 256 + Int(bytes[index + 5])]
                    ^ table[1 * 256 + Int(bytes[index + 6])] ^ table[Int(bytes[index + 7])]
                index += 8
            }
            while index < bytes.count {
                crc = table[Int((crc ^ UInt32(bytes[index])) & 0xFF)] ^ crc >> 8
                index += 1
            }
        }
        register = crc
    }

    /// Eight 256-entry tables: table 0 is the byte-at-a-time table; table k gives the
    /// effect of a byte followed by k zero bytes.
    private static let tables: [UInt32] = {
        var tables = [UInt32](repeating: 0, count: 8 * 256)
        for byte in 0..<256 {
            var crc = UInt32(byte)
            for _ in 0..<8 { crc = crc & 1 == 1 ? crc >> 1 ^ 0x82F6_3B78 : crc >> 1 }
            tables[byte] = crc
        }
        for slice in 1..<8 {
            for byte in 0..<256 {
                let previous = tables[(slice - 1) * 256 + byte]
                tables[slice * 256 + byte] = previous >> 8 ^ tables[Int(previous & 0xFF)]
            }
        }
        return tables
    }()
}

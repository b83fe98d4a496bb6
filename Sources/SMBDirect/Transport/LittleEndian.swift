// Every MS-SMBD and SMB2 field is little-endian and may sit at any offset; these two
// accessors are the only way the codecs touch message bytes.

extension UnsafeRawBufferPointer {
    /// The little-endian integer at `offset`. The caller has checked the bounds.
    func loadLittleEndian<T: FixedWidthInteger>(_: T.Type, at offset: Int) -> T {
        precondition(offset >= 0 && offset + MemoryLayout<T>.size <= count, "read past the end of the message")
        return T(littleEndian: loadUnaligned(fromByteOffset: offset, as: T.self))
    }
}

extension UnsafeMutableRawBufferPointer {
    /// Stores `value` little-endian at `offset`. The caller has checked the bounds.
    func storeLittleEndian<T: FixedWidthInteger>(_ value: T, at offset: Int) {
        precondition(offset >= 0 && offset + MemoryLayout<T>.size <= count, "write past the end of the buffer")
        storeBytes(of: value.littleEndian, toByteOffset: offset, as: T.self)
    }
}

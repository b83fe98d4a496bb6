import Crypto

extension ScatterTable {
    /// Feeds the bytes the table describes into `hasher`, page by page through a
    /// ``MappingIterator``, without copying them. The use the kernel's crypto API
    /// (`crypto_ahash_update` over a scatterlist) and SMB signing make of tables.
    public func update<H: HashFunction>(_ hasher: inout H) {
        for piece in MappingIterator(self) { hasher.update(bufferPointer: UnsafeRawBufferPointer(piece.bytes)) }
    }

    /// The SHA-256 digest of the bytes the table describes, computed without copying them.
    public func sha256() -> SHA256.Digest {
        var hasher = SHA256()
        update(&hasher)
        return hasher.finalize()
    }

    /// The CRC-32C of the bytes the table describes, computed without copying them.
    public func crc32c() -> UInt32 {
        var checksum = CRC32C()
        for piece in MappingIterator(self) { checksum.update(UnsafeRawBufferPointer(piece.bytes)) }
        return checksum.value
    }
}

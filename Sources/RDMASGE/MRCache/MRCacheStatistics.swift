/// What an ``MRCache`` has done since it was created.
public struct MRCacheStatistics: Hashable, Sendable {
    /// Lookups answered by a registered region.
    public var hits = 0
    /// Lookups that registered memory.
    public var misses = 0
    /// Successful registrations.
    public var registrations = 0
    /// Regions deregistered, for any reason.
    public var deregistrations = 0
    /// Idle regions deregistered to get under the limits.
    public var evictions = 0
    /// Regions hit by ``MRCache/invalidate(_:)``.
    public var invalidations = 0

    /// Statistics with the given counts, all zero by default.
    public init(hits: Int = 0, misses: Int = 0, registrations: Int = 0, deregistrations: Int = 0,
                evictions: Int = 0, invalidations: Int = 0) {
        self.hits = hits
        self.misses = misses
        self.registrations = registrations
        self.deregistrations = deregistrations
        self.evictions = evictions
        self.invalidations = invalidations
    }
}

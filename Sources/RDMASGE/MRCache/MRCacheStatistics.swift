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
    /// Regions invalidated, by ``MRCache/invalidate(_:)`` or by the memory monitor.
    public var invalidations = 0
    /// Registrations for user memory (lookups that retain) that the memory monitor
    /// watches: the region is reused until its memory goes away.
    public var monitoredRegistrations = 0
    /// Registrations for user memory that no monitor watches (``MRCacheMonitor/none``,
    /// or memory the kernel would not let it watch): the region is never reused and is
    /// deregistered at its last release. Registrations without a reference (memory the
    /// library owns) count in neither.
    public var unmonitoredRegistrations = 0
    /// Regions the memory monitor invalidated because their memory was unmapped, moved
    /// or dropped (also counted in ``invalidations``).
    public var monitorInvalidations = 0

    /// Statistics with the given counts, all zero by default.
    public init(hits: Int = 0, misses: Int = 0, registrations: Int = 0, deregistrations: Int = 0,
                evictions: Int = 0, invalidations: Int = 0, monitoredRegistrations: Int = 0,
                unmonitoredRegistrations: Int = 0, monitorInvalidations: Int = 0) {
        self.hits = hits
        self.misses = misses
        self.registrations = registrations
        self.deregistrations = deregistrations
        self.evictions = evictions
        self.invalidations = invalidations
        self.monitoredRegistrations = monitoredRegistrations
        self.unmonitoredRegistrations = unmonitoredRegistrations
        self.monitorInvalidations = monitorInvalidations
    }
}

/// Virtual time: nanoseconds since the run began. Only the event loop moves
/// it, to the time of the event it takes next; nothing reads a real clock.
struct VirtualClock {
    private(set) var now: UInt64 = 0

    mutating func advance(to time: UInt64) {
        precondition(time >= now, "the event queue went back in time")
        now = time
    }
}

/// Durations in the simulator's unit, nanoseconds.
@inline(__always) func ms(_ value: Int) -> UInt64 { UInt64(value) * 1_000_000 }
@inline(__always) func us(_ value: Int) -> UInt64 { UInt64(value) * 1_000 }
@inline(__always) func seconds(_ value: Int) -> UInt64 { UInt64(value) * 1_000_000_000 }

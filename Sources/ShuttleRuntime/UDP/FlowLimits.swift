#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// How many flows a UDP service keeps, and which flow makes room for a new
/// one. Every flow holds a socket: a flood of datagrams from new client
/// addresses must not take the descriptors that TCP and HTTP clients need.
enum FlowLimits {
    /// At most this many flows per service, whatever the descriptor limit.
    static let ceiling = 65_536

    /// A quarter of the process's descriptors (at least 64), up to the ceiling.
    static let maximumFlows: Int = {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 1_024 }
        // RLIM_INFINITY is all ones; any limit past the ceiling's four times is as good.
        let soft = min(UInt64(limit.rlim_cur), UInt64(ceiling) * 4)
        return min(ceiling, max(64, Int(soft / 4)))
    }()

    /// How many flows are compared to find one to end.
    static let sample = 8

    /// The receive buffer asked for on a service's socket, which every
    /// flow's datagrams share. The default (`net.core.rmem_default`, often
    /// 208 KiB) holds about ninety 1 KiB datagrams: a burst from a few
    /// clients while the relay thread waits for a core overflowed it, and
    /// the kernel dropped datagrams (`UdpRcvbufErrors`). The kernel grants
    /// up to `net.core.rmem_max` (doubled, for its own bookkeeping), and
    /// the memory is taken only while datagrams wait.
    static let serviceReceiveBuffer: Int32 = 4 << 20

    /// The flow to end for a new one: the least recently active of the
    /// first `sample` in the table's order, which the hash seed makes
    /// arbitrary (all of them when there are that few). A full table costs
    /// a new client a few comparisons, not a scan of every flow.
    static func victim<Key: Hashable, Flow, Time: Comparable>(
        in flows: [Key: Flow], lastActive: (Flow) -> Time
    ) -> Key? {
        var oldest: (key: Key, time: Time)?
        for (key, flow) in flows.prefix(sample) {
            let time = lastActive(flow)
            if oldest == nil || time < oldest!.time { oldest = (key, time) }
        }
        return oldest?.key
    }
}

/// A warning said at most once per interval, with how many were held back
/// since: a client flooding a service that has no backend must not flood
/// the log too.
struct WarningLimiter {
    let interval: UInt64
    private var lastSaid: UInt64?
    private var heldBack = 0

    init(intervalNanoseconds: UInt64 = 1_000_000_000) {
        interval = intervalNanoseconds
    }

    /// Whether to say the warning now, and how many were held back before it.
    mutating func shouldSay(now: UInt64) -> (say: Bool, heldBack: Int) {
        if let last = lastSaid, now &- last < interval {
            heldBack += 1
            return (false, 0)
        }
        lastSaid = now
        defer { heldBack = 0 }
        return (true, heldBack)
    }
}

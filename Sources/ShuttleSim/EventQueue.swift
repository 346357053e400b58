/// What can happen next in the simulated world. Payloads are small numbers
/// (indices into the simulation's tables) so that the queue stays compact.
enum SimEvent {
    /// The workload starts a new client.
    case spawnClient
    /// The operator sends an admin command.
    case adminChurn
    /// A fault begins.
    case injectFault
    /// The fault with this index ends.
    case healFault(Int32)
    /// The proxy's clock reaches the model (`.timeAdvanced`).
    case modelTick
    /// A TCP segment arrives at one end of a connection.
    case segment(conn: Int32, toAcceptor: Bool, kind: Segment, bytes: Int32)
    /// The initiator of a connection gives up waiting for it to be established.
    case connectTimeout(conn: Int32)
    /// A datagram arrives.
    case datagram(Int32)
    /// A client's next move (after its think time).
    case clientStep(Int32)
    /// A client gives up.
    case clientDeadline(Int32)
    /// A client stops waiting for the reply to one datagram.
    case datagramDeadline(Int32)
    /// A backend server sends its response on a connection.
    case serverReply(conn: Int32, bytes: Int32)
    /// A backend server answers a datagram.
    case serverDatagramReply(Int32)
    /// A health checker probes its backend.
    case probe(backend: UInt64, generation: UInt32)
    /// A proxied connection's idle timers are due.
    case idleCheck(connection: Int32, generation: UInt32)
    /// A UDP listener expires idle flows.
    case udpSweep(listener: UInt64, epoch: UInt32)
    /// A UDP flow's backend socket is ready.
    case udpConnected(connection: Int32)
    /// A listener the model asked for is bound (or fails to be).
    case bindDone(listener: UInt64, epoch: UInt32)
    /// The proxy process starts again after a crash.
    case proxyStart
}

/// The kinds of TCP segment the simulated network carries.
enum Segment: UInt8 {
    case syn, synAck, data, fin, rst
}

/// The pending events, earliest first; events at the same instant come out
/// in the order they were scheduled, so a run depends on nothing but its seed.
struct EventQueue {
    struct Entry {
        var time: UInt64
        var sequence: UInt64
        var event: SimEvent
    }

    private var heap: [Entry] = []
    private var sequence: UInt64 = 0

    init() { heap.reserveCapacity(4096) }

    var count: Int { heap.count }
    var isEmpty: Bool { heap.isEmpty }

    @inline(__always)
    private static func earlier(_ a: Entry, _ b: Entry) -> Bool {
        a.time < b.time || (a.time == b.time && a.sequence < b.sequence)
    }

    mutating func push(_ event: SimEvent, at time: UInt64) {
        sequence += 1
        heap.append(Entry(time: time, sequence: sequence, event: event))
        var child = heap.count - 1
        let entry = heap[child]
        while child > 0 {
            let parent = (child - 1) / 2
            if !Self.earlier(entry, heap[parent]) { break }
            heap[child] = heap[parent]
            child = parent
        }
        heap[child] = entry
    }

    mutating func pop() -> Entry? {
        guard let last = heap.popLast() else { return nil }
        guard !heap.isEmpty else { return last }
        let top = heap[0]
        let count = heap.count
        var parent = 0
        while true {
            var child = 2 * parent + 1
            if child >= count { break }
            if child + 1 < count && Self.earlier(heap[child + 1], heap[child]) { child += 1 }
            if !Self.earlier(heap[child], last) { break }
            heap[parent] = heap[child]
            parent = child
        }
        heap[parent] = last
        return top
    }
}

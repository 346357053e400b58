import ShuttleModel

/// How a run is set up.
public struct SimulationOptions: Sendable {
    public var seed: UInt64
    /// Events of the workload phase; a drain phase follows until all traffic
    /// has ended.
    public var steps: Int
    /// Keep every model step, for a scenario file and for shrinking.
    public var recordTrace = false
    /// Stop the workload phase at this step (to reproduce a failure at the
    /// step where it happened).
    public var stopAtStep: Int?
    /// Disable all faults (a calm run, for the strictest outcome checks).
    public var calm = false

    public init(seed: UInt64, steps: Int) {
        self.seed = seed
        self.steps = steps
    }
}

/// A broken invariant, where it broke.
public struct SimulationFailure: Sendable, CustomStringConvertible {
    /// The simulated event (counted from 1) after which it was found.
    public var step: Int
    /// Virtual time in nanoseconds.
    public var time: UInt64
    public var violation: Violation
    /// Whether the model's trace alone shows it (it can then be shrunk and replayed).
    public var inModelTrace: Bool

    public var description: String {
        "step \(step) (t=\(Double(time) / 1e9)s): \(violation)"
    }
}

/// What a run did.
public struct SimulationResult: Sendable {
    public var seed: UInt64
    /// Simulated events processed, drain included.
    public var events: Int
    /// Events the model handled.
    public var modelEvents: Int
    /// TCP connections and HTTP requests the workload made.
    public var connections: Int
    public var datagrams: Int
    public var adminCommands: Int
    public var faults: Int
    public var proxyRestarts: Int
    /// Virtual time at the end, nanoseconds.
    public var virtualTime: UInt64
    public var digest: TraceDigest
    public var failure: SimulationFailure?
    /// Every model step, when asked for.
    public var trace: [TimedStep]?
    /// The seed of the first proxy process's model (the scenario's seed).
    public var modelSeed: UInt64
    /// How the clients' connections, requests and datagrams ended.
    public var outcomes: [String: Int]

    /// One line: what the run did and its digest.
    public var summary: String {
        "seed=\(seed) events=\(events) model_events=\(modelEvents) connections=\(connections) datagrams=\(datagrams) admin=\(adminCommands) faults=\(faults) restarts=\(proxyRestarts) virtual_time=\(virtualTime / 1_000_000)ms digest=\(digest.hex)"
    }
}

/// One seeded run of the proxy's model on a simulated network: hosts,
/// listeners, TCP-like connections and datagrams over links with latency,
/// loss and partitions, backends and a proxy that crash and restart, clients,
/// an operator changing the config, and faults, all on a virtual clock.
/// The proxy's part is played by `SimDriver` code that carries out the
/// model's actions and feeds it events, as ShuttleRuntime does over sockets.
public struct Simulation {
    let options: SimulationOptions
    var random: SimRandom
    var clock = VirtualClock()
    var queue = EventQueue()
    var digest = TraceDigest()
    var steps = 0
    var modelEvents = 0
    var draining = false
    var drainStartedAt: UInt64 = 0
    var failure: SimulationFailure?
    var trace: [TimedStep]?
    /// The seed of the first proxy process's model.
    let modelSeed: UInt64

    // The network.
    var hosts: [SimHost] = []
    var tcp: [TCPConnection] = []
    var datagrams: [Datagram] = []
    var endpoints: [String: Int] = [:]
    /// Ports taken on the proxy's host by other processes (a fault).
    var foreignPorts: [Int: Int] = [:]

    // The backends' servers, by host.
    var servers: [BackendServer] = []

    // The proxy.
    var proxy: ProxyProcess
    var proxyConnections: [ProxyConnection] = []
    /// The state file on the proxy's disk: what the last `.persist` wrote.
    var disk: Config?
    var checker = InvariantChecker()
    var probes: [Probe] = []
    var generationCounter: UInt32 = 0
    var epochCounter: UInt32 = 0
    var ephemeralPort = 40000
    /// The operator's intent for the admin command being sent.
    var expectation: Expectation?

    // The workload.
    var world: World
    var clients: [SimClient] = []
    var openClients = 0
    var requests: [UDPRequest] = []
    var openRequests = 0
    var adminOutstanding = 0
    var outcomes: [String: Int] = [:]
    /// What clients can reach; rebuilt after the config or the proxy changes.
    var targets: ClientTargets?
    var counts = Counts()
    var faults: FaultPlan
    var activeFaults: [ActiveFault] = []

    struct Counts {
        var connections = 0
        var datagrams = 0
        var admin = 0
        var faults = 0
        var restarts = 0
    }

    public init(_ options: SimulationOptions) {
        self.options = options
        random = SimRandom(seed: options.seed)
        world = World(random: &random)
        faults = options.calm ? FaultPlan.calm : FaultPlan(random: &random)
        modelSeed = random.next()
        proxy = ProxyProcess(seed: modelSeed)
        if options.recordTrace { trace = [] }
        buildNetwork()
    }

    var now: UInt64 { clock.now }

    /// Runs to the end and reports.
    public static func run(_ options: SimulationOptions) -> SimulationResult {
        var simulation = Simulation(options)
        simulation.run()
        return simulation.result
    }

    public var result: SimulationResult {
        SimulationResult(
            seed: options.seed, events: steps, modelEvents: modelEvents, connections: counts.connections,
            datagrams: counts.datagrams, adminCommands: counts.admin, faults: counts.faults,
            proxyRestarts: counts.restarts, virtualTime: now, digest: digest, failure: failure, trace: trace,
            modelSeed: modelSeed, outcomes: outcomes)
    }

    /// Time allowed after the workload for all traffic to end.
    static let drainLimit = seconds(120)

    public mutating func run() {
        start()
        let stopAt = min(options.steps, options.stopAtStep ?? .max)
        while failure == nil, let entry = queue.pop() {
            clock.advance(to: entry.time)
            steps += 1
            digest.mix(entry.event, at: entry.time)
            handle(entry.event)
            if failure != nil { break }
            if !draining {
                if steps >= stopAt {
                    if options.stopAtStep != nil && steps >= options.stopAtStep! { return }
                    beginDrain()
                }
            } else if isQuiet {
                finish()
                return
            } else if now - drainStartedAt > Self.drainLimit {
                fail(
                    Violation(
                        .outcomes,
                        "traffic did not end within \(Self.drainLimit / 1_000_000_000) s after the workload stopped and faults healed: \(openClients) clients and \(openRequests) datagrams waiting, \(proxy.registry.openConnections) connections in the model, \(adminOutstanding) admin requests"
                    ), inModelTrace: false)
                return
            }
        }
    }

    mutating func start() {
        startProxy(initial: world.initialConfig)
        queue.push(.spawnClient, at: 0)
        queue.push(.adminChurn, at: world.adminInterval)
        if faults.enabled { queue.push(.injectFault, at: faults.interval) }
        queue.push(.modelTick, at: seconds(1))
    }

    mutating func handle(_ event: SimEvent) {
        switch event {
        case .spawnClient: spawnClient()
        case .adminChurn: adminChurn()
        case .injectFault: injectFault()
        case .healFault(let i): heal(Int(i))
        case .modelTick:
            if proxy.up { perform(send(.timeAdvanced(Instant(nanoseconds: now)))) }
            queue.push(.modelTick, at: now + seconds(1))
        case .segment(let c, let toAcceptor, let kind, let bytes): deliver(Int(c), toAcceptor: toAcceptor, kind, bytes: Int(bytes))
        case .connectTimeout(let c): connectTimedOut(Int(c))
        case .datagram(let d): deliver(datagram: Int(d))
        case .clientStep(let c): clientStep(Int(c))
        case .clientDeadline(let c): clientDeadline(Int(c))
        case .datagramDeadline(let r): datagramDeadline(Int(r))
        case .serverReply(let c, let bytes): serverReply(Int(c), bytes: Int(bytes))
        case .serverDatagramReply(let d): serverDatagramReply(Int(d))
        case .probe(let backend, let generation): probe(BackendID(backend), generation: generation)
        case .idleCheck(let c, let generation): idleCheck(Int(c), generation: generation)
        case .udpSweep(let listener, let epoch): udpSweep(ListenerID(listener), epoch: epoch)
        case .udpConnected(let c): udpConnected(Int(c))
        case .bindDone(let listener, let epoch): bindDone(ListenerID(listener), epoch: epoch)
        case .proxyStart: restartProxy()
        }
    }

    /// The workload stops; faults heal; the run goes on until all traffic has ended.
    mutating func beginDrain() {
        draining = true
        drainStartedAt = now
        for i in activeFaults.indices where !activeFaults[i].healed { heal(i) }
        if !proxy.up { restartProxy() }
    }

    var isQuiet: Bool {
        openClients == 0 && openRequests == 0 && proxy.up && adminOutstanding == 0 && !proxy.registry.isUpdating
            && proxy.registry.openConnections == 0 && checker.isIdle
    }

    mutating func finish() {
        if let v = checker.finish(proxy.registry) { fail(v, inModelTrace: true) }
    }

    mutating func fail(_ violation: Violation, inModelTrace: Bool) {
        guard failure == nil else { return }
        failure = SimulationFailure(step: steps, time: now, violation: violation, inModelTrace: inModelTrace)
    }

    mutating func tally(_ outcome: String) { outcomes[outcome, default: 0] += 1 }
}

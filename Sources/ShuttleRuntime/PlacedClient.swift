import ShuttleModel

/// A client the model places on backends (a TCP connection on either relay,
/// a UDP flow): it carries out the model's answers about itself, and hands
/// every other action to the driver.
protocol PlacedClient: AnyObject {
    var id: ConnectionID { get }
    var driver: Driver { get }
    /// Connects to the backend the model chose.
    func connect(_ target: BackendTarget)
    /// No backend is left: the client is let go.
    func closeWithoutBackend(_ reason: CloseReason)
}

extension PlacedClient {
    func carryOut(_ actions: [Action]) {
        for action in actions {
            switch action {
            case .connectBackend(let id, let target) where id == self.id:
                connect(target)
            case .closeClient(let id, let reason) where id == self.id:
                closeWithoutBackend(reason)
            default:
                driver.perform(action)
            }
        }
    }
}

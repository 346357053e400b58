extension Registry {
    /// Applies a health-check result to the backend it was run for; results
    /// for a backend since removed or replaced are ignored.
    mutating func checkResult(_ id: BackendID, passed: Bool) -> [Action] {
        guard let name = services.first(where: { $0.value.index(of: id) != nil })?.key,
            let i = services[name]?.index(of: id), services[name]!.backends[i].check != nil
        else { return [] }
        let settings = services[name]!.settings
        let flipped = services[name]!.backends[i].health.record(passed: passed, rise: settings.rise, fall: settings.fall)
        guard flipped else { return [] }
        let backend = services[name]!.backends[i]
        return [.backendHealthChanged(id, service: name, backend: backend.name, isUp: backend.isUp)]
    }
}

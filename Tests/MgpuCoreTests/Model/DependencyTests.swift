import MgpuCore
import Testing

@Suite struct DependencyTests {
    let a = JobID(number: 0xA), b = JobID(number: 0xB)

    @Test func slurmsFormParses() throws {
        let deps = try Dependency.parse("afterok:0000000A:0000000B,afterany:0000000A").get()
        #expect(deps == [Dependency(kind: .afterok, jobs: [a, b]), Dependency(kind: .afterany, jobs: [a])])
        #expect(deps.map(\.text).joined(separator: ",") == "afterok:0000000A:0000000B,afterany:0000000A")
        for bad in ["afterok", "soon:0000000A", "afterok:xyz", "afterok:0000000A,", ""] {
            if case .success = Dependency.parse(bad) { Issue.record("\(bad.debugDescription) should be refused") }
        }
    }

    @Test func eachKindHoldsWhenItShould() {
        func standing(_ kind: Dependency.Kind, _ state: JobState) -> Dependency.Standing {
            Dependency.standing([Dependency(kind: kind, jobs: [a])], state: { _ in state })
        }
        #expect(standing(.after, .pending) == .waiting("waiting for job 0000000A to start"))
        #expect(standing(.after, .running) == .satisfied && standing(.after, .cancelled) == .satisfied)
        #expect(standing(.afterany, .running) == .waiting("waiting for job 0000000A to end"))
        #expect(standing(.afterany, .failed) == .satisfied && standing(.afterany, .completed) == .satisfied)
        #expect(standing(.afterok, .running) == .waiting("waiting for job 0000000A to complete successfully"))
        #expect(standing(.afterok, .completed) == .satisfied)
        #expect(standing(.afterok, .failed) == .never("job 0000000A ended FAILED"))
        #expect(standing(.afterok, .cancelled) == .never("job 0000000A ended CANCELLED"))
        #expect(standing(.afternotok, .pending) == .waiting("waiting for job 0000000A to fail"))
        #expect(standing(.afternotok, .timeout) == .satisfied && standing(.afternotok, .nodeFail) == .satisfied)
        #expect(standing(.afternotok, .completed) == .never("job 0000000A completed successfully"))
        #expect(Dependency.standing([Dependency(kind: .afterok, jobs: [a])], state: { _ in nil }) == .never("job 0000000A is unknown"))
    }

    @Test func allMustHoldAndOneNeverIsEnough() {
        let deps = [Dependency(kind: .afterok, jobs: [a, b])]
        #expect(Dependency.standing(deps, state: { $0 == self.a ? .completed : .running })
                == .waiting("waiting for job 0000000B to complete successfully"))
        #expect(Dependency.standing(deps, state: { $0 == self.a ? .running : .failed }) == .never("job 0000000B ended FAILED"))
        #expect(Dependency.standing(deps, state: { _ in .completed }) == .satisfied)
    }
}

import Foundation
import MgpuCore
import MgpuWire
import Testing

@Suite struct PolicyMessagesTests {
    static let json = #"{"policy":{"accounts":{"lab":{"limits":{"maxGPUs":4},"shares":2}},"ageScale":129600,"defaultTime":604800,"halfLife":604800,"order":"fair-share","users":{"nobody":{"account":"lab","limits":{"maxRunning":2},"shares":1}}},"users":[{"account":"lab","fairShare":1,"gpusInUse":0,"limits":{"maxRunning":2},"name":"nobody","pendingJobs":0,"runningJobs":0,"shares":1,"usageGPUHours":0}]}"#

    @Test func aReportDecodesAndCopies() throws {
        let report = try JSONDecoder().decode(PolicyReport.self, from: Data(Self.json.utf8))
        let pairs = report.users.map { ($0.name, $0) }
        #expect(pairs.count == 1 && pairs[0].1.limits.maxRunning == 2)
        #expect(report.policy.accounts["lab"]?.limits.maxGPUs == 4 && report.policy.defaultTime == 604800)
    }

    @Test func settingsApplyAndMinusOneClears() {
        let limits = PolicySettings(maxGPUs: 8, maxRunning: -1).applied(to: .init(maxGPUs: 2, maxRunning: 3, maxPending: 9))
        #expect(limits == .init(maxGPUs: 8, maxRunning: nil, maxPending: 9))
        #expect(PolicySettings(maxGPUs: -2).validationError() != nil)
        #expect(PolicySettings(account: "../x").validationError() != nil)
    }
}

// Show where a building permit application stands, as the citizen portal of the original
// design does. No token: building-permit is public under `make run`.
//
//   node examples/clients/checkStatus.js INSTANCE_ID
//
// HMS_URL is the service's address (default http://127.0.0.1:8000). Node 18+ (built-in fetch).
const BASE_URL = process.env.HMS_URL || 'http://127.0.0.1:8000';

async function checkStatus(instanceId) {
  const response = await fetch(`${BASE_URL}/api/workflows/${instanceId}/status`);
  const data = await response.json();
  if (!response.ok) {
    console.error(`Could not read the status: ${response.status} ${data.error}: ${data.detail}`);
    process.exit(1);
  }
  console.log(`Status: ${data.status}`);
  console.log(`Current Step: ${data.currentStep}`);
  if (data.outcome) {
    const reasons = data.outcome.reasons.length ? ` (${data.outcome.reasons.join('; ')})` : '';
    console.log(`Outcome: ${data.outcome.result} at ${data.outcome.step}${reasons}`);
  }
  console.log('History:');
  for (const entry of data.history) {
    console.log(`  ${entry.step}: ${entry.result} at ${entry.time}`);
  }
}

const instanceId = process.argv[2];
if (!instanceId) {
  console.error('Usage: node checkStatus.js INSTANCE_ID');
  process.exit(2);
}
checkStatus(instanceId).catch((error) => {
  console.error(`Could not reach ${BASE_URL}: ${error.message}`);
  process.exit(1);
});

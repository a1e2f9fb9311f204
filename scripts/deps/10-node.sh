# scripts/deps/10-node.sh (sourced by scripts/test.sh): node and the npm
# packages of tools/fhir-validate, the independent FHIR validator that
# internal/fhirvalid runs in tests, and of tools/fhir-peer, the FHIR server
# (Medplum's router, in memory) that internal/fhirpeer starts for sync tests.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
	kapgw_apt_install nodejs npm
fi
for tool in fhir-validate fhir-peer; do (
	cd "$ROOT/tools/$tool"
	if [ ! -d node_modules ] || [ package-lock.json -nt node_modules ]; then
		npm ci --no-audit --no-fund --loglevel=error
		touch node_modules
	fi
) done

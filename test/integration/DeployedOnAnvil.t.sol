// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {JobEscrow} from "../../contracts/JobEscrow.sol";
import {Slashing} from "../../contracts/Slashing.sol";
import {StakingRegistry} from "../../contracts/StakingRegistry.sol";
import {IJobEscrow} from "../../contracts/interfaces/IJobEscrow.sol";
import {TestToken} from "../../contracts/mocks/TestToken.sol";
import {Test} from "forge-std/Test.sol";

/// @title DeployedOnAnvilTest
/// @notice Runs against a live anvil chain that `script/Deploy.s.sol` deployed to (driven by
/// `tools/test-deploy`, which sets ATTESTA_RPC_URL). Checks the wiring the script promises, then runs one job
/// from creation to claimed payment on a fork of that chain. Skipped when ATTESTA_RPC_URL is unset.
contract DeployedOnAnvilTest is Test {
    StakingRegistry internal registry;
    JobEscrow internal escrow;
    Slashing internal slashing;
    TestToken internal token;
    address internal admin;

    function setUp() public {
        string memory rpc = vm.envOr("ATTESTA_RPC_URL", string(""));
        if (bytes(rpc).length == 0) {
            vm.skip(true);
            return;
        }
        vm.createSelectFork(rpc);
        string memory json = vm.readFile(
            string.concat(vm.projectRoot(), "/deployments/", vm.toString(block.chainid), ".json")
        );
        registry = StakingRegistry(vm.parseJsonAddress(json, ".stakingRegistry"));
        escrow = JobEscrow(vm.parseJsonAddress(json, ".jobEscrow"));
        slashing = Slashing(vm.parseJsonAddress(json, ".slashing"));
        token = TestToken(vm.parseJsonAddress(json, ".token"));
        admin = vm.parseJsonAddress(json, ".admin");
    }

    function test_deploy_wiresRolesAndAddresses() public view {
        assertGt(address(registry).code.length, 0, "registry has no code");
        assertGt(address(escrow).code.length, 0, "escrow has no code");
        assertEq(address(escrow.registry()), address(registry));
        assertEq(address(escrow.slashing()), address(slashing));
        assertEq(escrow.token(), address(token));
        assertEq(registry.token(), address(token));
        assertTrue(registry.hasRole(registry.SLASHER_ROLE(), address(slashing)), "slashing cannot slash");
        assertEq(registry.defaultAdmin(), admin);
        assertEq(escrow.defaultAdmin(), admin);
        assertEq(slashing.defaultAdmin(), admin);
        assertTrue(escrow.hasRole(escrow.ARBITER_ROLE(), admin));
        assertTrue(escrow.isRuntimeAllowed(RUNTIME), "runtime not allowed");
    }

    uint256 internal constant SIGNER_KEY = 0xA77E57A;
    bytes32 internal constant RUNTIME = keccak256("attesta/test-runtime/v1");

    function test_deploy_runsOneJobEndToEnd() public {
        address operator = makeAddr("anvil-operator");
        _stakeAndRegister(operator);
        // A fresh deployment has only this operator, so its one signature is M of N.
        assertEq(registry.activeCount(), 1, "fresh deployment should have only this operator");
        assertEq(registry.threshold(), 1);

        uint256 fee = 1 ether;
        uint256 jobId = _createJob(fee);
        bytes memory output = "label:rust";
        escrow.settle(jobId, RUNTIME, keccak256(output), output, _attest(jobId, keccak256(output)));

        address[] memory signers = new address[](1);
        signers[0] = vm.addr(SIGNER_KEY);
        vm.warp(block.timestamp + escrow.config().challengeWindow);
        escrow.release(jobId, keccak256(output), signers);
        vm.prank(operator);
        uint256 paid = escrow.claim();
        assertEq(paid, fee - fee * escrow.config().protocolFeeBps / 10_000);
        assertEq(token.balanceOf(operator), paid);
    }

    function _stakeAndRegister(address operator) internal {
        uint256 minStake = registry.minStake();
        token.mint(operator, minStake);
        vm.startPrank(operator);
        token.approve(address(registry), minStake);
        registry.stake(minStake);
        (uint8 v, bytes32 r, bytes32 s) =
            vm.sign(SIGNER_KEY, registry.signerProofDigest(operator, vm.addr(SIGNER_KEY)));
        registry.registerSigner(vm.addr(SIGNER_KEY), abi.encodePacked(r, s, v));
        vm.stopPrank();
        assertTrue(registry.isActiveSigner(vm.addr(SIGNER_KEY)));
    }

    function _createJob(uint256 fee) internal returns (uint256 jobId) {
        address client = makeAddr("anvil-client");
        token.mint(client, fee);
        vm.startPrank(client);
        token.approve(address(escrow), fee);
        jobId = escrow.createJob(keccak256("m"), keccak256("i"), fee, block.timestamp + 1 hours);
        vm.stopPrank();
    }

    function _attest(uint256 jobId, bytes32 resultHash) internal view returns (bytes memory) {
        bytes32 digest = escrow.hashAttestation(
            IJobEscrow.Attestation(jobId, keccak256("m"), keccak256("i"), resultHash, RUNTIME)
        );
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(SIGNER_KEY, digest);
        return abi.encodePacked(r, s, v);
    }
}

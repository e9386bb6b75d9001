// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {JobEscrow} from "../contracts/JobEscrow.sol";
import {Slashing} from "../contracts/Slashing.sol";
import {StakingRegistry} from "../contracts/StakingRegistry.sol";
import {IJobEscrow} from "../contracts/interfaces/IJobEscrow.sol";
import {ISlashing} from "../contracts/interfaces/ISlashing.sol";
import {ISlashingExposure, IStakingRegistry} from "../contracts/interfaces/IStakingRegistry.sol";
import {TestToken} from "../contracts/mocks/TestToken.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {Script} from "forge-std/Script.sol";

/// @title AttestaDeployer
/// @notice The one place that wires a deployment together; the deploy script and the tests both use it, so
/// tests exercise exactly what ships.
abstract contract AttestaDeployer {
    /// @notice What a deployment needs. `admin` must be the account executing `_deploy` (it grants roles).
    struct DeployConfig {
        address admin;
        address guardian;
        address arbiter;
        address treasury;
        IERC20 token; // zero: deploy a TestToken (local chains only)
        uint48 adminDelay;
        uint256 minStake;
        uint256 unbondingPeriod;
        uint256 maxActive;
        uint256 thresholdBps;
        uint256 minThreshold;
        IJobEscrow.Config escrow;
        ISlashing.Penalties penalties;
        bytes32[] runtimeIds;
    }

    /// @notice The deployed contracts.
    struct Deployment {
        IERC20 token;
        StakingRegistry registry;
        JobEscrow escrow;
        Slashing slashing;
    }

    /// @notice Defaults for a local network: short windows a demo can wait out, DESIGN's penalties.
    function _localConfig(address admin) internal pure returns (DeployConfig memory cfg) {
        cfg.admin = admin;
        cfg.guardian = admin;
        cfg.arbiter = admin;
        cfg.treasury = admin;
        cfg.adminDelay = 1 days;
        cfg.minStake = 1000 ether;
        cfg.unbondingPeriod = 3 days;
        cfg.maxActive = 64;
        cfg.thresholdBps = 6667; // two thirds, rounded up: 3 of 4, 5 of 7, 11 of 16, 22 of 32
        cfg.minThreshold = 1;
        cfg.escrow = IJobEscrow.Config({
            minFee: 1e15,
            challengeBond: 10 ether,
            protocolFeeBps: 500,
            maxOutputBytes: 16 * 1024,
            minJobDuration: 1 minutes,
            maxJobDuration: 1 days,
            challengeWindow: 10 minutes,
            disputeTimeout: 1 days
        });
        cfg.penalties = ISlashing.Penalties({
            equivocationBps: 5000,
            overturnedBps: 3000,
            downtimeBps: 1000,
            collusionBps: 10_000,
            reporterBountyBps: 1000,
            epochLength: 1 days
        });
    }

    function _deploy(DeployConfig memory cfg) internal returns (Deployment memory d) {
        d.token = address(cfg.token) == address(0) ? IERC20(address(new TestToken())) : cfg.token;
        d.registry = new StakingRegistry(
            d.token,
            cfg.admin,
            cfg.adminDelay,
            cfg.treasury,
            cfg.minStake,
            cfg.unbondingPeriod,
            cfg.maxActive,
            cfg.thresholdBps,
            cfg.minThreshold
        );
        d.escrow = new JobEscrow(
            d.token,
            IStakingRegistry(address(d.registry)),
            cfg.admin,
            cfg.adminDelay,
            cfg.treasury,
            cfg.escrow
        );
        d.slashing = new Slashing(
            IStakingRegistry(address(d.registry)),
            IJobEscrow(address(d.escrow)),
            cfg.admin,
            cfg.adminDelay,
            cfg.penalties
        );
        d.registry.grantRole(d.registry.SLASHER_ROLE(), address(d.slashing));
        d.registry.grantRole(d.registry.GUARDIAN_ROLE(), cfg.guardian);
        d.escrow.grantRole(d.escrow.GUARDIAN_ROLE(), cfg.guardian);
        d.escrow.grantRole(d.escrow.ARBITER_ROLE(), cfg.arbiter);
        d.escrow.setSlashing(ISlashing(address(d.slashing)));
        d.registry.setExposureSource(ISlashingExposure(address(d.escrow)));
        for (uint256 i; i < cfg.runtimeIds.length; ++i) {
            d.escrow.setRuntimeAllowed(cfg.runtimeIds[i], true);
        }
    }
}

/// @title Deploy
/// @notice Deploys Attesta and writes `deployments/<chainId>.json`.
/// @dev Environment: `DEPLOYER_PRIVATE_KEY` (default: anvil's first account), `ATTESTA_TOKEN` (default: a new
/// TestToken), `ATTESTA_RUNTIME_IDS` (comma-separated bytes32 runtime ids to allow),
/// `ATTESTA_CHALLENGE_WINDOW` (seconds), `ATTESTA_DEPLOYMENT_FILE` (where to write the addresses, below
/// `deployments/`; default `deployments/<chainId>.json`). Usage:
/// `forge script script/Deploy.s.sol --rpc-url http://127.0.0.1:8545 --broadcast`
contract Deploy is Script, AttestaDeployer {
    /// @dev anvil's well-known first dev key; only a default for local chains.
    uint256 internal constant ANVIL_KEY_0 =
        0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80;

    function run() external returns (Deployment memory d) {
        uint256 key = vm.envOr("DEPLOYER_PRIVATE_KEY", ANVIL_KEY_0);
        address admin = vm.addr(key);
        DeployConfig memory cfg = _localConfig(admin);
        cfg.token = IERC20(vm.envOr("ATTESTA_TOKEN", address(0)));
        cfg.escrow.challengeWindow =
            uint40(vm.envOr("ATTESTA_CHALLENGE_WINDOW", uint256(cfg.escrow.challengeWindow)));
        cfg.runtimeIds = vm.envOr("ATTESTA_RUNTIME_IDS", ",", new bytes32[](0));

        vm.startBroadcast(key);
        d = _deploy(cfg);
        vm.stopBroadcast();

        string memory obj = "deployment";
        vm.serializeUint(obj, "chainId", block.chainid);
        vm.serializeUint(obj, "blockNumber", block.number);
        vm.serializeAddress(obj, "admin", admin);
        vm.serializeAddress(obj, "token", address(d.token));
        vm.serializeAddress(obj, "stakingRegistry", address(d.registry));
        vm.serializeAddress(obj, "jobEscrow", address(d.escrow));
        string memory json = vm.serializeAddress(obj, "slashing", address(d.slashing));
        string memory file =
            vm.envOr("ATTESTA_DEPLOYMENT_FILE", string.concat(vm.toString(block.chainid), ".json"));
        vm.writeJson(json, string.concat(vm.projectRoot(), "/deployments/", file));
    }
}

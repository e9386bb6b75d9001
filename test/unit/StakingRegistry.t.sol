// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {StakingRegistry} from "../../contracts/StakingRegistry.sol";
import {IJobEscrow} from "../../contracts/interfaces/IJobEscrow.sol";
import {
    ISlashingExposure,
    IStakingRegistry,
    IStakingRegistryErrors,
    IStakingRegistryEvents
} from "../../contracts/interfaces/IStakingRegistry.sol";
import {AttestaTest} from "../utils/AttestaTest.sol";
import {BlacklistToken, HookToken, ReentrantPayee} from "../utils/HostileTokens.sol";
import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {
    IAccessControlDefaultAdminRules
} from "@openzeppelin/contracts/access/extensions/IAccessControlDefaultAdminRules.sol";
import {IERC20Errors} from "@openzeppelin/contracts/interfaces/draft-IERC6093.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";

/// @title StakingRegistryTestBase
/// @notice Shared setup for the StakingRegistry unit tests: a dedicated slasher account (the Slashing contract
/// is tested on its own), helpers that stake, register and slash, and the reason codes nodes decode.
abstract contract StakingRegistryTestBase is AttestaTest, IStakingRegistryEvents {
    /// @dev `StakingRegistryCannotActivate` reasons as off-chain code decodes them; pinned here on purpose.
    uint8 internal constant REASON_NO_SIGNER = 1;
    uint8 internal constant REASON_BELOW_MIN_STAKE = 2;
    uint8 internal constant REASON_JAILED = 3;
    uint8 internal constant REASON_SET_FULL = 4;
    uint8 internal constant REASON_ALREADY_ACTIVE = 5;

    bytes32 internal constant DEFAULT_ADMIN_ROLE = 0x00;
    uint256 internal constant BPS = 10_000;

    address internal slasher = makeAddr("slasher");
    address internal reporter = makeAddr("reporter");
    address internal stranger = makeAddr("stranger");

    uint256 internal minStake;
    uint256 internal period;
    bytes32 internal slasherRole;
    bytes32 internal guardianRole;

    function setUp() public virtual override {
        super.setUp();
        _afterDeploy();
    }

    /// @dev Reads the deployed parameters and grants the test slasher its role on the current registry.
    function _afterDeploy() internal {
        minStake = cfg.minStake;
        period = cfg.unbondingPeriod;
        slasherRole = registry.SLASHER_ROLE();
        guardianRole = registry.GUARDIAN_ROLE();
        vm.prank(admin);
        registry.grantRole(slasherRole, slasher);
    }

    /// @dev Redeploys the suite on `token_` (a hostile token from test/utils/HostileTokens.sol).
    function _redeployWith(IERC20 token_) internal {
        cfg.token = token_;
        _deployWith(cfg);
        _afterDeploy();
    }

    /// @dev Mints, approves and stakes `amount` for `who`.
    function _stake(address who, uint256 amount) internal {
        _fund(who, amount);
        vm.prank(who);
        registry.stake(amount);
    }

    /// @dev Mints `amount` to `who` and approves the registry for it.
    function _fund(address who, uint256 amount) internal {
        token.mint(who, amount);
        vm.prank(who);
        token.approve(address(registry), amount);
    }

    /// @dev Binds `op.signer` to `op.operator` with a valid proof.
    function _register(Op memory op) internal {
        bytes memory proof = _signerProof(op.operator, op.signerKey);
        vm.prank(op.operator);
        registry.registerSigner(op.signer, proof);
    }

    /// @dev A new operator staked at the minimum with its key bound: active while there is room.
    function _activeOp() internal returns (Op memory op) {
        op = _newOp();
        _stakeAndRegister(op, minStake);
    }

    function _slash(address operator_, uint256 bps, address reporter_, uint256 reporterBps, bool jail)
        internal
        returns (uint256)
    {
        vm.prank(slasher);
        return registry.slash(operator_, bps, reporter_, reporterBps, jail);
    }

    function _requestUnstake(address who, uint256 amount) internal {
        vm.prank(who);
        registry.requestUnstake(amount);
    }

    function _setMaxActive(uint256 value) internal {
        vm.prank(admin);
        registry.setMaxActive(value);
    }

    function _cannotActivate(address operator_, uint8 reason) internal pure returns (bytes memory) {
        return abi.encodeWithSelector(
            IStakingRegistryErrors.StakingRegistryCannotActivate.selector, operator_, reason
        );
    }

    function _outOfBounds(bytes32 parameter, uint256 value) internal pure returns (bytes memory) {
        return abi.encodeWithSelector(
            IStakingRegistryErrors.StakingRegistryParameterOutOfBounds.selector, parameter, value
        );
    }

    function _unauthorized(address account, bytes32 role) internal pure returns (bytes memory) {
        return abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, account, role);
    }

    /// @dev Reference threshold: max(floor, ceil(n * bps / 10000)), written independently of Math.mulDiv.
    function _refThreshold(uint256 n, uint256 bps, uint256 floor) internal pure returns (uint256) {
        uint256 m = (n * bps + BPS - 1) / BPS;
        return m > floor ? m : floor;
    }

    function _contains(address[] memory list, address item) internal pure returns (bool) {
        for (uint256 i; i < list.length; ++i) {
            if (list[i] == item) return true;
        }
        return false;
    }

    /// @dev The registry must hold at least what it owes (C14 uses >=; no donations happen in these tests).
    function _assertSolvent() internal view {
        assertEq(
            token.balanceOf(address(registry)),
            registry.totalStaked() + registry.totalUnbonding(),
            "registry balance != staked + unbonding"
        );
    }
}

/*//////////////////////////////////////////////////////////////
                         CONSTRUCTOR
//////////////////////////////////////////////////////////////*/

contract StakingRegistryConstructorTest is StakingRegistryTestBase {
    struct Args {
        IERC20 token;
        address admin;
        uint48 adminDelay;
        address treasury;
        uint256 minStake;
        uint256 unbondingPeriod;
        uint256 maxActive;
        uint256 thresholdBps;
        uint256 minThreshold;
    }

    function _defaults() internal view returns (Args memory a) {
        a = Args({
            token: IERC20(address(token)),
            admin: admin,
            adminDelay: cfg.adminDelay,
            treasury: treasury,
            minStake: cfg.minStake,
            unbondingPeriod: cfg.unbondingPeriod,
            maxActive: cfg.maxActive,
            thresholdBps: cfg.thresholdBps,
            minThreshold: cfg.minThreshold
        });
    }

    function _construct(Args memory a) internal returns (StakingRegistry) {
        return new StakingRegistry(
            a.token,
            a.admin,
            a.adminDelay,
            a.treasury,
            a.minStake,
            a.unbondingPeriod,
            a.maxActive,
            a.thresholdBps,
            a.minThreshold
        );
    }

    function test_constructor_storesParameters() public {
        Args memory a = _defaults();
        a.minStake = 5 ether;
        a.unbondingPeriod = 7 days;
        a.maxActive = 10;
        a.thresholdBps = 7500;
        a.minThreshold = 2;
        a.adminDelay = 2 days;

        vm.expectEmit(true, true, true, true);
        emit TreasurySet(treasury);
        vm.expectEmit(true, true, true, true);
        emit ParameterSet("minStake", 5 ether);
        vm.expectEmit(true, true, true, true);
        emit ParameterSet("unbondingPeriod", 7 days);
        vm.expectEmit(true, true, true, true);
        emit ParameterSet("maxActive", 10);
        vm.expectEmit(true, true, true, true);
        emit ParameterSet("thresholdBps", 7500);
        vm.expectEmit(true, true, true, true);
        emit ParameterSet("minThreshold", 2);
        StakingRegistry r = _construct(a);

        assertEq(r.token(), address(token));
        assertEq(r.treasury(), treasury);
        assertEq(r.minStake(), 5 ether);
        assertEq(r.unbondingPeriod(), 7 days);
        assertEq(r.maxActive(), 10);
        assertEq(r.thresholdBps(), 7500);
        assertEq(r.minThreshold(), 2);
        assertEq(r.defaultAdmin(), admin);
        assertEq(r.defaultAdminDelay(), 2 days);
        assertTrue(r.hasRole(DEFAULT_ADMIN_ROLE, admin));
        assertEq(r.activeCount(), 0);
        assertEq(r.activeSetVersion(), 0);
        assertEq(r.totalStaked(), 0);
        assertFalse(r.paused());
    }

    function test_constructor_deploymentWiresRoles() public view {
        assertTrue(registry.hasRole(slasherRole, address(slashing)));
        assertTrue(registry.hasRole(guardianRole, guardian));
        assertEq(registry.defaultAdmin(), admin);
        assertFalse(registry.hasRole(slasherRole, admin), "admin must not slash directly");
        assertFalse(registry.hasRole(guardianRole, admin));
    }

    function test_constructor_eip712Domain() public view {
        (, string memory name, string memory version, uint256 chainId, address verifyingContract,,) =
            registry.eip712Domain();
        assertEq(name, "Attesta Staking");
        assertEq(version, "1");
        assertEq(chainId, block.chainid);
        assertEq(verifyingContract, address(registry));
    }

    function test_RevertWhen_constructorTokenIsZero() public {
        Args memory a = _defaults();
        a.token = IERC20(address(0));
        vm.expectRevert(IStakingRegistryErrors.StakingRegistryZeroAddress.selector);
        _construct(a);
    }

    function test_RevertWhen_constructorAdminIsZero() public {
        Args memory a = _defaults();
        a.admin = address(0);
        vm.expectRevert(
            abi.encodeWithSelector(
                IAccessControlDefaultAdminRules.AccessControlInvalidDefaultAdmin.selector, address(0)
            )
        );
        _construct(a);
    }

    function test_RevertWhen_constructorTreasuryIsZero() public {
        Args memory a = _defaults();
        a.treasury = address(0);
        vm.expectRevert(IStakingRegistryErrors.StakingRegistryZeroAddress.selector);
        _construct(a);
    }

    function test_RevertWhen_constructorMinStakeIsZero() public {
        Args memory a = _defaults();
        a.minStake = 0;
        vm.expectRevert(_outOfBounds("minStake", 0));
        _construct(a);
    }

    function test_RevertWhen_constructorMinStakeExceedsUint96() public {
        Args memory a = _defaults();
        a.minStake = uint256(type(uint96).max) + 1;
        vm.expectRevert(_outOfBounds("minStake", uint256(type(uint96).max) + 1));
        _construct(a);
    }

    function test_RevertWhen_constructorUnbondingPeriodTooShort() public {
        Args memory a = _defaults();
        a.unbondingPeriod = 1 hours - 1;
        vm.expectRevert(_outOfBounds("unbondingPeriod", 1 hours - 1));
        _construct(a);
    }

    function test_RevertWhen_constructorUnbondingPeriodTooLong() public {
        Args memory a = _defaults();
        a.unbondingPeriod = 365 days + 1;
        vm.expectRevert(_outOfBounds("unbondingPeriod", 365 days + 1));
        _construct(a);
    }

    function test_RevertWhen_constructorMaxActiveIsZero() public {
        Args memory a = _defaults();
        a.maxActive = 0;
        vm.expectRevert(_outOfBounds("maxActive", 0));
        _construct(a);
    }

    function test_RevertWhen_constructorMaxActiveAboveBound() public {
        Args memory a = _defaults();
        a.maxActive = 65;
        vm.expectRevert(_outOfBounds("maxActive", 65));
        _construct(a);
    }

    function test_RevertWhen_constructorThresholdBpsBelowHalf() public {
        Args memory a = _defaults();
        a.thresholdBps = 5000;
        vm.expectRevert(_outOfBounds("thresholdBps", 5000));
        _construct(a);
    }

    function test_RevertWhen_constructorThresholdBpsAbove10000() public {
        Args memory a = _defaults();
        a.thresholdBps = 10_001;
        vm.expectRevert(_outOfBounds("thresholdBps", 10_001));
        _construct(a);
    }

    function test_RevertWhen_constructorMinThresholdIsZero() public {
        Args memory a = _defaults();
        a.minThreshold = 0;
        vm.expectRevert(_outOfBounds("minThreshold", 0));
        _construct(a);
    }

    function test_RevertWhen_constructorMinThresholdAboveBound() public {
        Args memory a = _defaults();
        a.minThreshold = 65;
        vm.expectRevert(_outOfBounds("minThreshold", 65));
        _construct(a);
    }
}

/*//////////////////////////////////////////////////////////////
                            STAKE
//////////////////////////////////////////////////////////////*/

contract StakingRegistryStakeTest is StakingRegistryTestBase {
    function test_stake_pullsTokensAndRecordsStake() public {
        Op memory op = _newOp();
        uint256 amount = 250 ether;
        _fund(op.operator, amount);

        vm.expectEmit(address(registry));
        emit Staked(op.operator, amount, amount);
        vm.prank(op.operator);
        registry.stake(amount);

        IStakingRegistry.Operator memory o = registry.operator(op.operator);
        assertEq(o.stake, amount);
        assertEq(o.unbonding, 0);
        assertFalse(o.active);
        assertEq(registry.totalStaked(), amount);
        assertEq(token.balanceOf(address(registry)), amount);
        assertEq(token.balanceOf(op.operator), 0);
    }

    function test_stake_accumulatesAcrossCalls() public {
        Op memory op = _newOp();
        _stake(op.operator, 100 ether);
        _fund(op.operator, 200 ether);

        vm.expectEmit(address(registry));
        emit Staked(op.operator, 200 ether, 300 ether);
        vm.prank(op.operator);
        registry.stake(200 ether);

        assertEq(registry.operator(op.operator).stake, 300 ether);
        assertEq(registry.totalStaked(), 300 ether);
        _assertSolvent();
    }

    function test_stake_activatesOnceSignerAndMinStakeAreMet() public {
        Op memory op = _newOp();
        _stake(op.operator, minStake - 1);
        _register(op);
        assertFalse(registry.isActiveSigner(op.signer));
        uint64 version = registry.activeSetVersion();
        _fund(op.operator, 1);

        vm.expectEmit(address(registry));
        emit Staked(op.operator, 1, minStake);
        vm.expectEmit(address(registry));
        emit OperatorActivated(op.operator, op.signer, version + 1);
        vm.prank(op.operator);
        registry.stake(1);

        assertTrue(registry.isActiveSigner(op.signer));
        assertTrue(registry.operator(op.operator).active);
        assertEq(registry.activeCount(), 1);
        assertEq(registry.activeSetVersion(), version + 1);
    }

    function test_stake_doesNotActivateWithoutSigner() public {
        Op memory op = _newOp();
        _stake(op.operator, minStake * 2);
        assertFalse(registry.operator(op.operator).active);
        assertEq(registry.activeCount(), 0);
        assertEq(registry.activeSetVersion(), 0);
    }

    function test_stake_doesNotActivateWhenSetIsFull() public {
        _setMaxActive(2);
        _addOperators(2);
        Op memory op = _newOp();
        _stake(op.operator, minStake - 1);
        _register(op);
        uint64 version = registry.activeSetVersion();

        _stake(op.operator, 1);

        assertFalse(registry.operator(op.operator).active);
        assertFalse(registry.isActiveSigner(op.signer));
        assertEq(registry.activeCount(), 2);
        assertEq(registry.activeSetVersion(), version);
    }

    function test_stake_doesNotReactivateJailedOperator() public {
        Op memory op = _activeOp();
        _slash(op.operator, 0, address(0), 0, true);

        _stake(op.operator, minStake);

        assertFalse(registry.operator(op.operator).active);
        assertFalse(registry.isActiveSigner(op.signer));
        assertEq(registry.operator(op.operator).stake, minStake * 2);
    }

    function test_stake_topUpOfActiveOperatorKeepsSetVersion() public {
        Op memory op = _activeOp();
        uint64 version = registry.activeSetVersion();

        _stake(op.operator, 1 ether);

        assertEq(registry.activeSetVersion(), version);
        assertEq(registry.activeCount(), 1);
        assertEq(registry.operator(op.operator).stake, minStake + 1 ether);
    }

    function test_stake_acceptsExactlyUint96Max() public {
        Op memory op = _newOp();
        _stake(op.operator, type(uint96).max);
        assertEq(registry.operator(op.operator).stake, type(uint96).max);
        assertEq(registry.totalStaked(), type(uint96).max);
    }

    function test_RevertWhen_stakeAmountIsZero() public {
        Op memory op = _newOp();
        vm.expectRevert(
            abi.encodeWithSelector(IStakingRegistryErrors.StakingRegistryInsufficientAmount.selector, 0, 1)
        );
        vm.prank(op.operator);
        registry.stake(0);
    }

    function test_RevertWhen_stakeExceedsUint96() public {
        Op memory op = _newOp();
        uint256 amount = uint256(type(uint96).max) + 1;
        vm.expectRevert(
            abi.encodeWithSelector(IStakingRegistryErrors.StakingRegistryStakeOverflow.selector, amount)
        );
        vm.prank(op.operator);
        registry.stake(amount);
    }

    function test_RevertWhen_stakeTopUpOverflowsUint96() public {
        Op memory op = _newOp();
        _stake(op.operator, type(uint96).max);
        _fund(op.operator, 1);
        vm.expectRevert(
            abi.encodeWithSelector(
                IStakingRegistryErrors.StakingRegistryStakeOverflow.selector, uint256(type(uint96).max) + 1
            )
        );
        vm.prank(op.operator);
        registry.stake(1);
    }

    function testFuzz_RevertWhen_stakeOverflowsUint96(uint256 existing, uint256 extra) public {
        existing = bound(existing, 1, type(uint96).max);
        extra = bound(extra, uint256(type(uint96).max) - existing + 1, type(uint256).max - existing);
        Op memory op = _newOp();
        _stake(op.operator, existing);

        vm.expectRevert(
            abi.encodeWithSelector(
                IStakingRegistryErrors.StakingRegistryStakeOverflow.selector, existing + extra
            )
        );
        vm.prank(op.operator);
        registry.stake(extra);
        assertEq(registry.operator(op.operator).stake, existing);
    }

    function test_RevertWhen_stakeWithoutAllowance() public {
        Op memory op = _newOp();
        token.mint(op.operator, 1 ether);
        vm.expectRevert(
            abi.encodeWithSelector(
                IERC20Errors.ERC20InsufficientAllowance.selector, address(registry), 0, 1 ether
            )
        );
        vm.prank(op.operator);
        registry.stake(1 ether);
    }

    function testFuzz_stake_totalStakedIsSumOfStakes(uint256[4] memory amounts) public {
        uint256 sum;
        for (uint256 i; i < amounts.length; ++i) {
            amounts[i] = bound(amounts[i], 1, 1e27);
            Op memory op = _newOp();
            _stake(op.operator, amounts[i]);
            sum += amounts[i];
            assertEq(registry.operator(op.operator).stake, amounts[i]);
        }
        assertEq(registry.totalStaked(), sum);
        _assertSolvent();
    }
}

/*//////////////////////////////////////////////////////////////
                        REGISTER SIGNER
//////////////////////////////////////////////////////////////*/

contract StakingRegistryRegisterSignerTest is StakingRegistryTestBase {
    function _invalidProof(address signer) internal pure returns (bytes memory) {
        return
            abi.encodeWithSelector(IStakingRegistryErrors.StakingRegistryInvalidSignerProof.selector, signer);
    }

    function test_registerSigner_bindsKeyAndActivates() public {
        Op memory op = _newOp();
        _stake(op.operator, minStake);
        bytes memory proof = _signerProof(op.operator, op.signerKey);

        vm.expectEmit(address(registry));
        emit SignerRegistered(op.operator, op.signer, address(0));
        vm.expectEmit(address(registry));
        emit OperatorActivated(op.operator, op.signer, 1);
        vm.prank(op.operator);
        registry.registerSigner(op.signer, proof);

        assertEq(registry.operator(op.operator).signer, op.signer);
        assertEq(registry.operatorOf(op.signer), op.operator);
        assertTrue(registry.isActiveSigner(op.signer));
        assertEq(registry.activeSetVersion(), 1);
    }

    function test_registerSigner_bindsWithoutStakeButStaysInactive() public {
        Op memory op = _newOp();
        _register(op);
        assertEq(registry.operatorOf(op.signer), op.operator);
        assertFalse(registry.isActiveSigner(op.signer));
        assertEq(registry.activeSetVersion(), 0);
    }

    function test_registerSigner_jailedOperatorBindsButStaysInactive() public {
        Op memory op = _activeOp();
        _slash(op.operator, 0, address(0), 0, true);
        (address newSigner, uint256 newKey) = makeAddrAndKey("jailed-new-key");
        bytes memory proof = _signerProof(op.operator, newKey);

        vm.prank(op.operator);
        registry.registerSigner(newSigner, proof);

        assertEq(registry.operator(op.operator).signer, newSigner);
        assertFalse(registry.isActiveSigner(newSigner));
        assertFalse(registry.operator(op.operator).active);
    }

    function test_RevertWhen_registerSignerZeroSigner() public {
        Op memory op = _newOp();
        bytes memory proof = _signerProof(op.operator, op.signerKey);
        vm.expectRevert(IStakingRegistryErrors.StakingRegistryZeroSigner.selector);
        vm.prank(op.operator);
        registry.registerSigner(address(0), proof);
    }

    function test_RevertWhen_registerSignerProofByWrongKey() public {
        Op memory op = _newOp();
        Op memory other = _newOp();
        // A valid signature over the right digest, but by a key other than the one being bound.
        bytes memory proof = _sign(other.signerKey, registry.signerProofDigest(op.operator, op.signer));
        vm.expectRevert(_invalidProof(op.signer));
        vm.prank(op.operator);
        registry.registerSigner(op.signer, proof);
    }

    function test_RevertWhen_registerSignerProofForAnotherOperator() public {
        Op memory victim = _newOp();
        Op memory thief = _newOp();
        // The key proved itself to `victim`; copying the proof (e.g. from the mempool) must not work.
        bytes memory proof = _signerProof(victim.operator, victim.signerKey);

        vm.expectRevert(_invalidProof(victim.signer));
        vm.prank(thief.operator);
        registry.registerSigner(victim.signer, proof);

        _register(victim);
        assertEq(registry.operatorOf(victim.signer), victim.operator);
    }

    function test_RevertWhen_registerSignerProofIs64BytesCompact() public {
        Op memory op = _newOp();
        (bytes32 r, bytes32 s, uint8 v) = _split(_signerProof(op.operator, op.signerKey));
        // EIP-2098 compact form of a valid signature: same key, same digest, but only 65 bytes are accepted.
        bytes memory compact = abi.encodePacked(r, bytes32(uint256(s) | (uint256(v - 27) << 255)));
        assertEq(compact.length, 64);
        vm.expectRevert(_invalidProof(op.signer));
        vm.prank(op.operator);
        registry.registerSigner(op.signer, compact);
    }

    function test_RevertWhen_registerSignerProofIsEmpty() public {
        Op memory op = _newOp();
        vm.expectRevert(_invalidProof(op.signer));
        vm.prank(op.operator);
        registry.registerSigner(op.signer, "");
    }

    function test_RevertWhen_registerSignerProofIsMalleated() public {
        Op memory op = _newOp();
        bytes memory proof = _malleate(_signerProof(op.operator, op.signerKey));
        vm.expectRevert(_invalidProof(op.signer));
        vm.prank(op.operator);
        registry.registerSigner(op.signer, proof);
    }

    function test_RevertWhen_registerSignerProofHasBadV() public {
        Op memory op = _newOp();
        (bytes32 r, bytes32 s, uint8 v) = _split(_signerProof(op.operator, op.signerKey));
        bytes memory proof = abi.encodePacked(r, s, v - 27);
        vm.expectRevert(_invalidProof(op.signer));
        vm.prank(op.operator);
        registry.registerSigner(op.signer, proof);
    }

    function test_RevertWhen_registerSignerProofOverRawHash() public {
        Op memory op = _newOp();
        // Signed without the EIP-712 domain: must not be accepted as a proof.
        bytes memory proof = _sign(op.signerKey, keccak256(abi.encode(op.operator, op.signer)));
        vm.expectRevert(_invalidProof(op.signer));
        vm.prank(op.operator);
        registry.registerSigner(op.signer, proof);
    }

    function test_RevertWhen_registerSignerProofFromAnotherChain() public {
        Op memory op = _newOp();
        bytes memory proof = _signerProof(op.operator, op.signerKey);
        vm.chainId(block.chainid + 1);
        vm.expectRevert(_invalidProof(op.signer));
        vm.prank(op.operator);
        registry.registerSigner(op.signer, proof);
    }

    function test_RevertWhen_registerSignerKeyBoundToAnotherOperator() public {
        Op memory first = _activeOp();
        Op memory second = _newOp();
        // Even a genuine proof by the key for `second` cannot move a bound key.
        bytes memory proof = _signerProof(second.operator, first.signerKey);
        vm.expectRevert(
            abi.encodeWithSelector(
                IStakingRegistryErrors.StakingRegistrySignerAlreadyBound.selector,
                first.signer,
                first.operator
            )
        );
        vm.prank(second.operator);
        registry.registerSigner(first.signer, proof);
    }

    function test_RevertWhen_registerSignerSameKeyTwice() public {
        Op memory op = _activeOp();
        bytes memory proof = _signerProof(op.operator, op.signerKey);
        uint64 version = registry.activeSetVersion();
        vm.expectRevert(
            abi.encodeWithSelector(
                IStakingRegistryErrors.StakingRegistrySignerAlreadyBound.selector, op.signer, op.operator
            )
        );
        vm.prank(op.operator);
        registry.registerSigner(op.signer, proof);
        assertEq(registry.activeSetVersion(), version);
    }

    function test_RevertWhen_registerSignerRebindsRetiredKey() public {
        Op memory op = _activeOp();
        (address newSigner, uint256 newKey) = makeAddrAndKey("rotated-key");
        bytes memory rotation = _signerProof(op.operator, newKey);
        vm.prank(op.operator);
        registry.registerSigner(newSigner, rotation);

        bytes memory proof = _signerProof(op.operator, op.signerKey);
        vm.expectRevert(
            abi.encodeWithSelector(
                IStakingRegistryErrors.StakingRegistrySignerAlreadyBound.selector, op.signer, op.operator
            )
        );
        vm.prank(op.operator);
        registry.registerSigner(op.signer, proof);
    }

    function test_registerSigner_rotationSwapsActiveKey() public {
        _addOperators(2);
        Op memory op = ops[0];
        (address newSigner, uint256 newKey) = makeAddrAndKey("rotated-key");
        bytes memory proof = _signerProof(op.operator, newKey);
        uint64 version = registry.activeSetVersion();

        vm.expectEmit(address(registry));
        emit SignerRegistered(op.operator, newSigner, op.signer);
        vm.expectEmit(address(registry));
        emit OperatorDeactivated(op.operator, op.signer, version + 1);
        vm.expectEmit(address(registry));
        emit OperatorActivated(op.operator, newSigner, version + 1);
        vm.prank(op.operator);
        registry.registerSigner(newSigner, proof);

        assertEq(registry.activeSetVersion(), version + 1);
        assertEq(registry.activeCount(), 2);
        assertTrue(registry.isActiveSigner(newSigner));
        assertFalse(registry.isActiveSigner(op.signer));
        assertTrue(registry.operator(op.operator).active);
        assertEq(registry.operator(op.operator).signer, newSigner);
        // The retired key stays attributable to its operator (evidence signed with it can still be slashed).
        assertEq(registry.operatorOf(op.signer), op.operator);
        assertEq(registry.operatorOf(newSigner), op.operator);
        assertFalse(_contains(registry.activeSigners(), op.signer));
        assertTrue(_contains(registry.activeSigners(), newSigner));
    }

    function test_registerSigner_retiredKeyAttestationNoLongerCounts() public {
        _addOperators(3);
        Op memory op = ops[0];
        bytes32 digest = _digest(1, keccak256(OUTPUT));
        address[] memory signers = new address[](1);
        signers[0] = ECDSA.recover(digest, _sign(op.signerKey, digest));

        (uint256 m, uint256 firstInactive) = registry.checkSigners(signers);
        assertEq(firstInactive, 1, "key counts before rotation");
        assertEq(m, 3); // ceil(3 * 6667 / 10000): every one of three must sign

        (address newSigner, uint256 newKey) = makeAddrAndKey("rotated-key");
        bytes memory proof = _signerProof(op.operator, newKey);
        vm.prank(op.operator);
        registry.registerSigner(newSigner, proof);

        (m, firstInactive) = registry.checkSigners(signers);
        assertEq(firstInactive, 0, "retired key still counts");
        assertEq(m, 3, "rotation must not change N");
        assertFalse(registry.isActiveSigner(signers[0]));

        signers[0] = ECDSA.recover(digest, _sign(newKey, digest));
        (, firstInactive) = registry.checkSigners(signers);
        assertEq(firstInactive, 1, "new key does not count");
    }

    function test_registerSigner_rotationWhileInactiveLeavesSetAlone() public {
        Op memory op = _newOp();
        _stake(op.operator, minStake - 1);
        _register(op);
        (address newSigner, uint256 newKey) = makeAddrAndKey("rotated-key");
        bytes memory proof = _signerProof(op.operator, newKey);

        vm.expectEmit(address(registry));
        emit SignerRegistered(op.operator, newSigner, op.signer);
        vm.prank(op.operator);
        registry.registerSigner(newSigner, proof);

        assertEq(registry.activeSetVersion(), 0);
        assertEq(registry.activeCount(), 0);
        assertEq(registry.operator(op.operator).signer, newSigner);
    }

    function testFuzz_registerSigner_anyKeyWithValidProofBinds(uint256 key) public {
        key = bound(key, 1, SECP256K1_N - 1);
        address signer = vm.addr(key);
        Op memory op = _newOp();
        _stake(op.operator, minStake);
        bytes memory proof = _signerProof(op.operator, key);

        vm.prank(op.operator);
        registry.registerSigner(signer, proof);

        assertEq(registry.operatorOf(signer), op.operator);
        assertTrue(registry.isActiveSigner(signer));
    }

    function testFuzz_RevertWhen_registerSignerProofByOtherKey(uint256 key, uint256 otherKey) public {
        key = bound(key, 1, SECP256K1_N - 1);
        otherKey = bound(otherKey, 1, SECP256K1_N - 1);
        vm.assume(key != otherKey);
        address signer = vm.addr(key);
        Op memory op = _newOp();
        bytes memory proof = _sign(otherKey, registry.signerProofDigest(op.operator, signer));

        vm.expectRevert(_invalidProof(signer));
        vm.prank(op.operator);
        registry.registerSigner(signer, proof);
    }
}

/*//////////////////////////////////////////////////////////////
                      ACTIVATE / DEACTIVATE
//////////////////////////////////////////////////////////////*/

contract StakingRegistryActivateTest is StakingRegistryTestBase {
    function test_activate_reasonCodesAreStable() public view {
        assertEq(registry.REASON_NO_SIGNER(), REASON_NO_SIGNER);
        assertEq(registry.REASON_BELOW_MIN_STAKE(), REASON_BELOW_MIN_STAKE);
        assertEq(registry.REASON_JAILED(), REASON_JAILED);
        assertEq(registry.REASON_SET_FULL(), REASON_SET_FULL);
        assertEq(registry.REASON_ALREADY_ACTIVE(), REASON_ALREADY_ACTIVE);
    }

    function test_RevertWhen_activateWithoutSigner() public {
        Op memory op = _newOp();
        _stake(op.operator, minStake);
        vm.expectRevert(_cannotActivate(op.operator, REASON_NO_SIGNER));
        vm.prank(op.operator);
        registry.activate();
    }

    function test_RevertWhen_activateBelowMinStake() public {
        Op memory op = _newOp();
        _stake(op.operator, minStake - 1);
        _register(op);
        vm.expectRevert(_cannotActivate(op.operator, REASON_BELOW_MIN_STAKE));
        vm.prank(op.operator);
        registry.activate();
    }

    function test_RevertWhen_activateJailed() public {
        Op memory op = _activeOp();
        _slash(op.operator, 0, address(0), 0, true);
        assertTrue(registry.operator(op.operator).jailed);
        vm.expectRevert(_cannotActivate(op.operator, REASON_JAILED));
        vm.prank(op.operator);
        registry.activate();
    }

    function test_RevertWhen_activateSetFull() public {
        _setMaxActive(2);
        _addOperators(2);
        Op memory op = _newOp();
        _stakeAndRegister(op, minStake);
        assertFalse(registry.operator(op.operator).active);
        vm.expectRevert(_cannotActivate(op.operator, REASON_SET_FULL));
        vm.prank(op.operator);
        registry.activate();
    }

    function test_RevertWhen_activateAlreadyActive() public {
        Op memory op = _activeOp();
        vm.expectRevert(_cannotActivate(op.operator, REASON_ALREADY_ACTIVE));
        vm.prank(op.operator);
        registry.activate();
    }

    function test_activate_takesFreedSlot() public {
        _setMaxActive(2);
        _addOperators(2);
        Op memory op = _newOp();
        _stakeAndRegister(op, minStake);
        vm.prank(ops[0].operator);
        registry.deactivate();
        uint64 version = registry.activeSetVersion();

        vm.expectEmit(address(registry));
        emit OperatorActivated(op.operator, op.signer, version + 1);
        vm.prank(op.operator);
        registry.activate();

        assertTrue(registry.isActiveSigner(op.signer));
        assertEq(registry.activeCount(), 2);
        assertEq(registry.activeSetVersion(), version + 1);
    }

    function test_activate_afterMinStakeLowered() public {
        Op memory op = _newOp();
        _stake(op.operator, minStake / 2);
        _register(op);
        vm.prank(admin);
        registry.setMinStake(minStake / 2);

        vm.prank(op.operator);
        registry.activate();
        assertTrue(registry.isActiveSigner(op.signer));
    }

    function test_activate_afterVoluntaryDeactivation() public {
        Op memory op = _activeOp();
        vm.prank(op.operator);
        registry.deactivate();
        vm.prank(op.operator);
        registry.activate();
        assertTrue(registry.operator(op.operator).active);
        assertEq(registry.activeSetVersion(), 3);
    }

    function test_activate_afterUnjailedSlashWithEnoughStake() public {
        Op memory op = _newOp();
        _stakeAndRegister(op, minStake * 2);
        _slash(op.operator, 1000, address(0), 0, false);
        assertFalse(registry.operator(op.operator).active, "slash deactivates");

        vm.prank(op.operator);
        registry.activate();
        assertTrue(registry.isActiveSigner(op.signer));
    }
}

contract StakingRegistryDeactivateTest is StakingRegistryTestBase {
    function test_deactivate_leavesSetKeepsStake() public {
        _addOperators(4);
        Op memory op = ops[1];
        uint64 version = registry.activeSetVersion();
        assertEq(registry.threshold(), 3);

        vm.expectEmit(address(registry));
        emit OperatorDeactivated(op.operator, op.signer, version + 1);
        vm.prank(op.operator);
        registry.deactivate();

        IStakingRegistry.Operator memory o = registry.operator(op.operator);
        assertFalse(o.active);
        assertEq(o.stake, minStake);
        assertEq(o.signer, op.signer);
        assertFalse(registry.isActiveSigner(op.signer));
        assertEq(registry.activeCount(), 3);
        assertEq(registry.threshold(), 3); // ceil(3 * 6667 / 10000)
        assertEq(registry.activeSetVersion(), version + 1);
        assertEq(registry.totalStaked(), minStake * 4);
    }

    function test_RevertWhen_deactivateNotActive() public {
        Op memory op = _newOp();
        _stake(op.operator, minStake);
        vm.expectRevert(
            abi.encodeWithSelector(IStakingRegistryErrors.StakingRegistryNotActive.selector, op.operator)
        );
        vm.prank(op.operator);
        registry.deactivate();
    }

    function test_RevertWhen_deactivateTwice() public {
        Op memory op = _activeOp();
        vm.prank(op.operator);
        registry.deactivate();
        vm.expectRevert(
            abi.encodeWithSelector(IStakingRegistryErrors.StakingRegistryNotActive.selector, op.operator)
        );
        vm.prank(op.operator);
        registry.deactivate();
    }

    function test_deactivate_thenStakeRejoins() public {
        Op memory op = _activeOp();
        vm.prank(op.operator);
        registry.deactivate();
        // Documented: stake() joins the active set whenever the operator qualifies and there is room.
        _stake(op.operator, 1);
        assertTrue(registry.isActiveSigner(op.signer));
    }
}

/*//////////////////////////////////////////////////////////////
                       REQUEST UNSTAKE
//////////////////////////////////////////////////////////////*/

contract StakingRegistryRequestUnstakeTest is StakingRegistryTestBase {
    function test_RevertWhen_requestUnstakeZero() public {
        Op memory op = _activeOp();
        vm.expectRevert(
            abi.encodeWithSelector(
                IStakingRegistryErrors.StakingRegistryInsufficientAmount.selector, 0, minStake
            )
        );
        vm.prank(op.operator);
        registry.requestUnstake(0);
    }

    function test_RevertWhen_requestUnstakeMoreThanStake() public {
        Op memory op = _activeOp();
        vm.expectRevert(
            abi.encodeWithSelector(
                IStakingRegistryErrors.StakingRegistryInsufficientAmount.selector, minStake + 1, minStake
            )
        );
        vm.prank(op.operator);
        registry.requestUnstake(minStake + 1);
    }

    function test_RevertWhen_requestUnstakeWithNoStake() public {
        vm.expectRevert(
            abi.encodeWithSelector(IStakingRegistryErrors.StakingRegistryInsufficientAmount.selector, 1, 0)
        );
        vm.prank(stranger);
        registry.requestUnstake(1);
    }

    function test_RevertWhen_requestUnstakeOfUnbondingAgain() public {
        Op memory op = _activeOp();
        _requestUnstake(op.operator, minStake);
        // Unbonding stake is no longer stake: it cannot be requested twice.
        vm.expectRevert(
            abi.encodeWithSelector(IStakingRegistryErrors.StakingRegistryInsufficientAmount.selector, 1, 0)
        );
        vm.prank(op.operator);
        registry.requestUnstake(1);
    }

    function test_requestUnstake_movesStakeToUnbonding() public {
        Op memory op = _newOp();
        _stake(op.operator, 300 ether);
        uint256 end = block.timestamp + period;

        vm.expectEmit(address(registry));
        emit UnstakeRequested(op.operator, 100 ether, end);
        vm.prank(op.operator);
        registry.requestUnstake(100 ether);

        IStakingRegistry.Operator memory o = registry.operator(op.operator);
        assertEq(o.stake, 200 ether);
        assertEq(o.unbonding, 100 ether);
        assertEq(o.unbondingEnd, end);
        assertEq(registry.totalStaked(), 200 ether);
        assertEq(registry.totalUnbonding(), 100 ether);
        assertEq(token.balanceOf(op.operator), 0, "tokens must stay in the registry while unbonding");
        _assertSolvent();
    }

    function test_requestUnstake_partialKeepsActive() public {
        Op memory op = _newOp();
        _stakeAndRegister(op, minStake * 2);
        uint64 version = registry.activeSetVersion();

        _requestUnstake(op.operator, minStake);

        assertTrue(registry.isActiveSigner(op.signer));
        assertEq(registry.activeSetVersion(), version);
        assertEq(registry.operator(op.operator).stake, minStake);
    }

    function test_requestUnstake_deactivatesBelowMinStake() public {
        Op memory op = _activeOp();
        uint64 version = registry.activeSetVersion();

        vm.expectEmit(address(registry));
        emit UnstakeRequested(op.operator, 1, block.timestamp + period);
        vm.expectEmit(address(registry));
        emit OperatorDeactivated(op.operator, op.signer, version + 1);
        vm.prank(op.operator);
        registry.requestUnstake(1);

        assertFalse(registry.isActiveSigner(op.signer));
        assertFalse(registry.operator(op.operator).active);
        assertEq(registry.activeCount(), 0);
    }

    function test_requestUnstake_deactivatesMemberBelowRaisedMinStake() public {
        Op memory op = _newOp();
        _stakeAndRegister(op, minStake * 3);
        vm.prank(admin);
        registry.setMinStake(minStake * 4);
        assertTrue(
            registry.isActiveSigner(op.signer), "members below a raised minimum stay until they change stake"
        );

        _requestUnstake(op.operator, 1);
        assertFalse(registry.isActiveSigner(op.signer));
    }

    function test_requestUnstake_restartsTimerForAllUnbonding() public {
        Op memory op = _newOp();
        _stake(op.operator, 300 ether);
        _requestUnstake(op.operator, 100 ether);
        uint256 firstEnd = block.timestamp + period;

        vm.warp(firstEnd - 1);
        _requestUnstake(op.operator, 50 ether);
        uint256 secondEnd = block.timestamp + period;
        assertEq(registry.operator(op.operator).unbondingEnd, secondEnd);
        assertEq(registry.operator(op.operator).unbonding, 150 ether);

        vm.warp(firstEnd);
        vm.expectRevert(
            abi.encodeWithSelector(IStakingRegistryErrors.StakingRegistryNotWithdrawable.selector, secondEnd)
        );
        vm.prank(op.operator);
        registry.withdraw();

        vm.warp(secondEnd);
        vm.prank(op.operator);
        assertEq(registry.withdraw(), 150 ether);
    }

    function test_requestUnstake_usesPeriodAtRequestTime() public {
        Op memory op = _newOp();
        _stake(op.operator, 100 ether);
        _requestUnstake(op.operator, 100 ether);
        uint256 end = block.timestamp + period;

        vm.prank(admin);
        registry.setUnbondingPeriod(30 days);

        assertEq(registry.operator(op.operator).unbondingEnd, end);
        vm.warp(end);
        vm.prank(op.operator);
        assertEq(registry.withdraw(), 100 ether);
    }

    function testFuzz_requestUnstake_conservesTotals(uint256 staked, uint256 amount) public {
        staked = bound(staked, 1, 1e27);
        amount = bound(amount, 1, staked);
        Op memory op = _newOp();
        _stakeAndRegister(op, staked);

        _requestUnstake(op.operator, amount);

        IStakingRegistry.Operator memory o = registry.operator(op.operator);
        assertEq(o.stake + o.unbonding, staked);
        assertEq(o.unbonding, amount);
        assertEq(registry.totalStaked() + registry.totalUnbonding(), staked);
        assertEq(o.active, staked - amount >= minStake);
        _assertSolvent();
    }
}

/*//////////////////////////////////////////////////////////////
                           WITHDRAW
//////////////////////////////////////////////////////////////*/

contract StakingRegistryWithdrawTest is StakingRegistryTestBase {
    Op internal op;
    uint256 internal end;

    function setUp() public override {
        super.setUp();
        op = _newOp();
        _stakeAndRegister(op, minStake * 2);
        _requestUnstake(op.operator, minStake / 2);
        end = block.timestamp + period;
    }

    function _notWithdrawable(uint256 unbondingEnd) internal pure returns (bytes memory) {
        return
            abi.encodeWithSelector(
                IStakingRegistryErrors.StakingRegistryNotWithdrawable.selector, unbondingEnd
            );
    }

    function test_RevertWhen_withdrawNothingUnbonding() public {
        Op memory fresh = _newOp();
        _stake(fresh.operator, minStake);
        vm.expectRevert(_notWithdrawable(0));
        vm.prank(fresh.operator);
        registry.withdraw();
    }

    function test_RevertWhen_withdrawBeforeEnd() public {
        vm.warp(end - 1);
        vm.expectRevert(_notWithdrawable(end));
        vm.prank(op.operator);
        registry.withdraw();
    }

    function test_withdraw_atExactEnd() public {
        vm.warp(end);
        uint256 amount = minStake / 2;

        vm.expectEmit(address(registry));
        emit Withdrawn(op.operator, amount);
        vm.prank(op.operator);
        uint256 paid = registry.withdraw();

        assertEq(paid, amount);
        assertEq(token.balanceOf(op.operator), amount);
        IStakingRegistry.Operator memory o = registry.operator(op.operator);
        assertEq(o.unbonding, 0);
        assertEq(o.stake, minStake * 2 - amount, "withdraw must not touch active stake");
        assertTrue(o.active);
        assertEq(registry.totalUnbonding(), 0);
        assertEq(registry.totalStaked(), minStake * 2 - amount);
        _assertSolvent();
    }

    function test_withdraw_longAfterEnd() public {
        vm.warp(end + 365 days);
        vm.prank(op.operator);
        assertEq(registry.withdraw(), minStake / 2);
        assertEq(token.balanceOf(op.operator), minStake / 2);
    }

    function test_RevertWhen_withdrawTwice() public {
        vm.warp(end);
        vm.prank(op.operator);
        registry.withdraw();
        vm.expectRevert(_notWithdrawable(0));
        vm.prank(op.operator);
        registry.withdraw();
        assertEq(token.balanceOf(op.operator), minStake / 2);
    }

    function test_withdraw_paysOnlyWhatSurvivedSlash() public {
        // Stake 1500 and unbonding 500; an 80% slash takes 1600: all 1500 staked, then 100 of the unbonding.
        uint256 taken = _slash(op.operator, 8000, address(0), 0, false);
        assertEq(taken, minStake * 8 / 5);
        assertEq(registry.operator(op.operator).stake, 0);
        assertEq(registry.operator(op.operator).unbonding, minStake * 2 / 5);
        vm.warp(end);
        vm.prank(op.operator);
        assertEq(registry.withdraw(), minStake * 2 / 5);
        _assertSolvent();
    }

    function testFuzz_withdraw_onlyFromUnbondingEnd(uint256 elapsed) public {
        elapsed = bound(elapsed, 0, period * 2);
        vm.warp(block.timestamp + elapsed);
        if (elapsed < period) {
            vm.expectRevert(_notWithdrawable(end));
            vm.prank(op.operator);
            registry.withdraw();
            assertEq(token.balanceOf(op.operator), 0);
        } else {
            vm.prank(op.operator);
            assertEq(registry.withdraw(), minStake / 2);
            assertEq(token.balanceOf(op.operator), minStake / 2);
        }
    }
}

/*//////////////////////////////////////////////////////////////
                             SLASH
//////////////////////////////////////////////////////////////*/

contract StakingRegistrySlashTest is StakingRegistryTestBase {
    function test_RevertWhen_slashCallerLacksSlasherRole() public {
        Op memory op = _activeOp();
        address[3] memory callers = [admin, guardian, op.operator];
        for (uint256 i; i < callers.length; ++i) {
            vm.expectRevert(_unauthorized(callers[i], slasherRole));
            vm.prank(callers[i]);
            registry.slash(op.operator, BPS, callers[i], BPS, true);
        }
        assertEq(registry.operator(op.operator).stake, minStake);
    }

    function test_slash_deployedSlashingContractMaySlash() public {
        Op memory op = _activeOp();
        vm.prank(address(slashing));
        uint256 amount = registry.slash(op.operator, 1000, address(0), 0, false);
        assertEq(amount, minStake / 10);
    }

    function test_RevertWhen_slashBpsAbove10000() public {
        Op memory op = _activeOp();
        vm.expectRevert(_outOfBounds("slashBps", BPS + 1));
        vm.prank(slasher);
        registry.slash(op.operator, BPS + 1, reporter, 0, false);
    }

    function test_RevertWhen_slashReporterBpsAbove10000() public {
        Op memory op = _activeOp();
        vm.expectRevert(_outOfBounds("reporterBps", BPS + 1));
        vm.prank(slasher);
        registry.slash(op.operator, 5000, reporter, BPS + 1, false);
    }

    function test_slash_paysBountyAndTreasury() public {
        Op memory op = _activeOp();
        uint256 treasuryBefore = token.balanceOf(treasury);
        uint256 amount = minStake / 2;
        uint256 bounty = amount / 10;

        vm.expectEmit(address(registry));
        emit Slashed(op.operator, amount, reporter, bounty, false);
        uint256 taken = _slash(op.operator, 5000, reporter, 1000, false);

        assertEq(taken, amount);
        assertEq(token.balanceOf(reporter), bounty);
        assertEq(token.balanceOf(treasury) - treasuryBefore, amount - bounty);
        assertEq(registry.operator(op.operator).stake, minStake - amount);
        assertEq(registry.totalStaked(), minStake - amount);
        assertEq(registry.totalSlashed(), amount);
        _assertSolvent();
    }

    function test_slash_withoutReporterSendsAllToTreasury() public {
        Op memory op = _activeOp();
        uint256 treasuryBefore = token.balanceOf(treasury);

        vm.expectEmit(address(registry));
        emit Slashed(op.operator, minStake / 10, address(0), 0, false);
        _slash(op.operator, 1000, address(0), 5000, false);

        assertEq(token.balanceOf(treasury) - treasuryBefore, minStake / 10);
        assertEq(token.balanceOf(address(0)), 0);
    }

    function test_slash_fullBountyLeavesTreasuryNothing() public {
        Op memory op = _activeOp();
        uint256 treasuryBefore = token.balanceOf(treasury);
        _slash(op.operator, BPS, reporter, BPS, false);
        assertEq(token.balanceOf(reporter), minStake);
        assertEq(token.balanceOf(treasury), treasuryBefore);
    }

    function test_slash_roundsAmountAndBountyDown() public {
        Op memory op = _newOp();
        _stake(op.operator, 999); // 999 * 3333 / 10000 = 332.96 -> 332; 332 * 1500 / 10000 = 49.8 -> 49
        uint256 treasuryBefore = token.balanceOf(treasury);
        uint256 taken = _slash(op.operator, 3333, reporter, 1500, false);
        assertEq(taken, 332);
        assertEq(token.balanceOf(reporter), 49);
        assertEq(token.balanceOf(treasury) - treasuryBefore, 283);
        assertEq(registry.operator(op.operator).stake, 667);
    }

    function test_slash_takesStakeBeforeUnbonding() public {
        Op memory op = _newOp();
        _stake(op.operator, 1000 ether);
        _requestUnstake(op.operator, 400 ether);

        uint256 taken = _slash(op.operator, 5000, address(0), 0, false);

        // 50% of 1000 = 500: all 600 staked can cover it, unbonding untouched.
        assertEq(taken, 500 ether);
        assertEq(registry.operator(op.operator).stake, 100 ether);
        assertEq(registry.operator(op.operator).unbonding, 400 ether);
        assertEq(registry.totalStaked(), 100 ether);
        assertEq(registry.totalUnbonding(), 400 ether);
    }

    function test_slash_takesUnbondingOnceStakeIsExhausted() public {
        Op memory op = _newOp();
        _stake(op.operator, 1000 ether);
        _requestUnstake(op.operator, 400 ether);

        uint256 taken = _slash(op.operator, 8000, address(0), 0, false);

        // 80% of 1000 = 800: 600 from stake, the other 200 from unbonding.
        assertEq(taken, 800 ether);
        assertEq(registry.operator(op.operator).stake, 0);
        assertEq(registry.operator(op.operator).unbonding, 200 ether);
        assertEq(registry.totalStaked(), 0);
        assertEq(registry.totalUnbonding(), 200 ether);
        _assertSolvent();
    }

    /// RELIABILITY C11: unbonding in the same block as the slash does not escape it.
    function test_slash_unstakeRequestedInSameBlockIsStillSlashed() public {
        Op memory op = _activeOp();
        _requestUnstake(op.operator, minStake);
        assertFalse(registry.operator(op.operator).active);

        uint256 taken = _slash(op.operator, 5000, reporter, 1000, true);

        assertEq(taken, minStake / 2);
        assertEq(registry.operator(op.operator).unbonding, minStake / 2);
        assertEq(registry.totalUnbonding(), minStake / 2);
        vm.warp(block.timestamp + period);
        vm.prank(op.operator);
        assertEq(registry.withdraw(), minStake / 2, "operator must only get the unslashed half");
    }

    /// RELIABILITY C11: unbonding stays slashable until it is actually withdrawn.
    function test_slash_unbondingPastEndButNotWithdrawnIsSlashed() public {
        Op memory op = _activeOp();
        _requestUnstake(op.operator, minStake);
        vm.warp(block.timestamp + period + 1);

        assertEq(_slash(op.operator, BPS, address(0), 0, true), minStake);
        vm.expectRevert(
            abi.encodeWithSelector(IStakingRegistryErrors.StakingRegistryNotWithdrawable.selector, 0)
        );
        vm.prank(op.operator);
        registry.withdraw();
    }

    function test_slash_withdrawnStakeIsOutOfReach() public {
        Op memory op = _activeOp();
        _requestUnstake(op.operator, minStake);
        vm.warp(block.timestamp + period);
        vm.prank(op.operator);
        registry.withdraw();

        assertEq(_slash(op.operator, BPS, address(0), 0, true), 0);
        assertEq(token.balanceOf(op.operator), minStake);
    }

    /// RELIABILITY C12: a second full slash for the same offence takes nothing.
    function test_slash_secondFullSlashTakesNothing() public {
        Op memory op = _newOp();
        _stakeAndRegister(op, minStake * 2);
        _requestUnstake(op.operator, minStake / 2);
        uint256 treasuryBefore = token.balanceOf(treasury);

        assertEq(_slash(op.operator, BPS, address(0), 0, true), minStake * 2);

        vm.expectEmit(address(registry));
        emit Slashed(op.operator, 0, reporter, 0, true);
        assertEq(_slash(op.operator, BPS, reporter, 1000, true), 0);

        assertEq(registry.operator(op.operator).stake, 0);
        assertEq(registry.operator(op.operator).unbonding, 0);
        assertEq(registry.totalSlashed(), minStake * 2);
        assertEq(token.balanceOf(treasury) - treasuryBefore, minStake * 2);
        assertEq(token.balanceOf(reporter), 0);
        _assertSolvent();
    }

    /// RELIABILITY C12: repeated partial slashes compound on what is left, never beyond it.
    function test_slash_repeatedPartialSlashesCompound() public {
        Op memory op = _newOp();
        _stake(op.operator, 1000 ether);
        assertEq(_slash(op.operator, 5000, address(0), 0, false), 500 ether);
        assertEq(_slash(op.operator, 5000, address(0), 0, false), 250 ether);
        assertEq(registry.operator(op.operator).stake, 250 ether);
        assertEq(registry.totalSlashed(), 750 ether);
    }

    function test_slash_jailsAndDeactivates() public {
        _addOperators(3);
        Op memory op = ops[0];
        uint64 version = registry.activeSetVersion();

        vm.expectEmit(address(registry));
        emit OperatorDeactivated(op.operator, op.signer, version + 1);
        vm.expectEmit(address(registry));
        emit Slashed(op.operator, minStake / 2, reporter, minStake / 20, true);
        _slash(op.operator, 5000, reporter, 1000, true);

        IStakingRegistry.Operator memory o = registry.operator(op.operator);
        assertTrue(o.jailed);
        assertFalse(o.active);
        assertFalse(registry.isActiveSigner(op.signer));
        assertEq(registry.activeCount(), 2);
        assertEq(registry.activeSetVersion(), version + 1);

        // Jailed for good: topping up stake or rotating keys does not bring the operator back.
        _stake(op.operator, minStake);
        (address newSigner, uint256 newKey) = makeAddrAndKey("after-jail");
        bytes memory proof = _signerProof(op.operator, newKey);
        vm.prank(op.operator);
        registry.registerSigner(newSigner, proof);
        assertFalse(registry.isActiveSigner(newSigner));
        assertEq(registry.activeCount(), 2);
    }

    function test_slash_withoutJailDeactivatesButDoesNotJail() public {
        Op memory op = _activeOp();
        _slash(op.operator, 1000, address(0), 0, false);
        assertFalse(registry.operator(op.operator).jailed);
        assertFalse(registry.operator(op.operator).active);
    }

    function test_slash_inactiveOperatorLeavesSetVersion() public {
        Op memory op = _newOp();
        _stake(op.operator, minStake);
        _addOperators(2);
        uint64 version = registry.activeSetVersion();

        _slash(op.operator, 5000, address(0), 0, true);

        assertEq(registry.activeSetVersion(), version);
        assertEq(registry.activeCount(), 2);
        assertTrue(registry.operator(op.operator).jailed);
    }

    function test_slash_unknownOperatorTakesNothing() public {
        uint256 treasuryBefore = token.balanceOf(treasury);
        assertEq(_slash(stranger, BPS, reporter, BPS, false), 0);
        assertEq(token.balanceOf(treasury), treasuryBefore);
        assertEq(token.balanceOf(reporter), 0);
        assertEq(registry.totalSlashed(), 0);
    }

    function test_slash_zeroBpsWithJailMovesNoTokens() public {
        Op memory op = _activeOp();
        assertEq(_slash(op.operator, 0, reporter, BPS, true), 0);
        assertEq(registry.operator(op.operator).stake, minStake);
        assertTrue(registry.operator(op.operator).jailed);
        assertEq(token.balanceOf(reporter), 0);
    }

    function test_slash_jailedOperatorCanStillExit() public {
        Op memory op = _activeOp();
        _slash(op.operator, 5000, address(0), 0, true);
        _requestUnstake(op.operator, minStake / 2);
        vm.warp(block.timestamp + period);
        vm.prank(op.operator);
        assertEq(registry.withdraw(), minStake / 2);
        _assertSolvent();
    }

    function testFuzz_slash_neverExceedsStakePlusUnbonding(
        uint256 staked,
        uint256 unstaked,
        uint256 bps,
        uint256 reporterBps,
        bool withReporter
    ) public {
        staked = bound(staked, 1, type(uint96).max);
        unstaked = bound(unstaked, 0, staked);
        bps = bound(bps, 0, BPS);
        reporterBps = bound(reporterBps, 0, BPS);
        address rep = withReporter ? reporter : address(0);
        Op memory op = _newOp();
        _stakeAndRegister(op, staked);
        if (unstaked != 0) _requestUnstake(op.operator, unstaked);
        uint256 stakeBefore = staked - unstaked;
        uint256 treasuryBefore = token.balanceOf(treasury);

        uint256 taken = _slash(op.operator, bps, rep, reporterBps, false);

        uint256 expected = staked * bps / BPS;
        assertEq(taken, expected);
        assertLe(taken, staked);
        uint256 fromStake = expected < stakeBefore ? expected : stakeBefore;
        IStakingRegistry.Operator memory o = registry.operator(op.operator);
        assertEq(o.stake, stakeBefore - fromStake);
        assertEq(o.unbonding, unstaked - (expected - fromStake));
        assertEq(uint256(o.stake) + o.unbonding + taken, staked);
        uint256 bounty = withReporter ? taken * reporterBps / BPS : 0;
        assertEq(token.balanceOf(reporter), bounty);
        assertEq(token.balanceOf(treasury) - treasuryBefore, taken - bounty);
        assertEq(registry.totalSlashed(), taken);
        assertFalse(o.active);
        _assertSolvent();
    }
}

/*//////////////////////////////////////////////////////////////
                           THRESHOLD
//////////////////////////////////////////////////////////////*/

contract StakingRegistryThresholdTest is StakingRegistryTestBase {
    function _setThreshold(uint256 bps, uint256 floor) internal {
        vm.prank(admin);
        registry.setThreshold(bps, floor);
    }

    function test_threshold_emptySetIsFloor() public {
        assertEq(registry.activeCount(), 0);
        assertEq(registry.threshold(), 1);
        _setThreshold(6667, 3);
        assertEq(registry.threshold(), 3);
    }

    function test_threshold_deployedConfigNeedsMoreThanTwoThirds() public {
        uint256[4] memory n = [uint256(4), 7, 16, 32];
        uint256[4] memory m = [uint256(3), 5, 11, 22];
        uint256 added;
        for (uint256 i; i < n.length; ++i) {
            _addOperators(n[i] - added);
            added = n[i];
            assertEq(registry.threshold(), m[i]);
        }
    }

    function test_threshold_matchesFormulaForEveryN() public {
        uint256[5] memory bpsList = [uint256(5001), 5100, 6667, 7500, 10_000];
        uint256[3] memory floors = [uint256(1), 3, 64];
        for (uint256 n = 1; n <= 64; ++n) {
            _addOperators(1);
            assertEq(registry.activeCount(), n);
            // Deployed config (6667 bps, floor 1): strictly more than two thirds, the BFT quorum.
            assertEq(registry.threshold(), 2 * n / 3 + 1, "deployed threshold is not floor(2N/3)+1");
            for (uint256 i; i < bpsList.length; ++i) {
                for (uint256 j; j < floors.length; ++j) {
                    _setThreshold(bpsList[i], floors[j]);
                    uint256 m = registry.threshold();
                    assertEq(m, _refThreshold(n, bpsList[i], floors[j]));
                    assertGt(m, 0);
                    if (n >= floors[j]) assertLe(m, n);
                    (uint256 checked,) = registry.checkSigners(new address[](0));
                    assertEq(checked, m);
                }
            }
            _setThreshold(cfg.thresholdBps, cfg.minThreshold);
        }
    }

    /// forge-config: default.fuzz.runs = 128
    function testFuzz_threshold_matchesReference(uint256 n, uint256 bps, uint256 floor) public {
        n = bound(n, 1, 64);
        bps = bound(bps, 5001, BPS);
        floor = bound(floor, 1, 64);
        _addOperators(n);
        _setThreshold(bps, floor);

        uint256 m = registry.threshold();
        assertEq(m, _refThreshold(n, bps, floor));
        assertGt(m, 0);
        if (n >= floor) assertLe(m, n);
        // A strict majority must sign (bps > 5000), so two results can never both reach a quorum.
        assertGt(2 * m, n);
    }

    function test_threshold_followsSetChanges() public {
        _addOperators(4);
        assertEq(registry.threshold(), 3);
        vm.prank(ops[0].operator);
        registry.deactivate();
        vm.prank(ops[1].operator);
        registry.deactivate();
        assertEq(registry.threshold(), 2); // ceil(2 * 6667 / 10000)
    }

    function test_threshold_floorAboveNExceedsN() public {
        _addOperators(2);
        _setThreshold(6667, 3);
        // With fewer active signers than the floor, nothing can reach the threshold.
        assertEq(registry.threshold(), 3);
    }
}

/*//////////////////////////////////////////////////////////////
                              VIEWS
//////////////////////////////////////////////////////////////*/

contract StakingRegistryViewsTest is StakingRegistryTestBase {
    function test_checkSigners_allActiveReturnsLength() public {
        _addOperators(3);
        address[] memory signers = new address[](3);
        for (uint256 i; i < 3; ++i) {
            signers[i] = ops[i].signer;
        }
        (uint256 m, uint256 firstInactive) = registry.checkSigners(signers);
        assertEq(m, 3);
        assertEq(firstInactive, 3);
    }

    function test_checkSigners_returnsFirstInactiveIndex() public {
        _addOperators(4);
        vm.prank(ops[2].operator);
        registry.deactivate();
        address[] memory signers = new address[](4);
        signers[0] = ops[0].signer;
        signers[1] = ops[1].signer;
        signers[2] = ops[2].signer; // deactivated
        signers[3] = stranger; // never registered
        (uint256 m, uint256 firstInactive) = registry.checkSigners(signers);
        assertEq(firstInactive, 2);
        assertEq(m, 3); // N = 3 after the deactivation

        signers[2] = ops[3].signer;
        (, firstInactive) = registry.checkSigners(signers);
        assertEq(firstInactive, 3);
    }

    function test_checkSigners_operatorAddressIsNotASigner() public {
        _addOperators(1);
        address[] memory signers = new address[](1);
        signers[0] = ops[0].operator;
        (, uint256 firstInactive) = registry.checkSigners(signers);
        assertEq(firstInactive, 0);
    }

    function test_checkSigners_emptyList() public {
        _addOperators(4);
        (uint256 m, uint256 firstInactive) = registry.checkSigners(new address[](0));
        assertEq(m, 3);
        assertEq(firstInactive, 0);
    }

    function test_operatorsOf_mapsKeysIncludingRetiredAndUnknown() public {
        _addOperators(2);
        address retired = ops[0].signer;
        (address newSigner, uint256 newKey) = makeAddrAndKey("rotated-key");
        bytes memory proof = _signerProof(ops[0].operator, newKey);
        vm.prank(ops[0].operator);
        registry.registerSigner(newSigner, proof);

        address[] memory signers = new address[](4);
        signers[0] = ops[1].signer;
        signers[1] = retired;
        signers[2] = stranger;
        signers[3] = newSigner;
        address[] memory operators = registry.operatorsOf(signers);

        assertEq(operators.length, 4);
        assertEq(operators[0], ops[1].operator);
        assertEq(operators[1], ops[0].operator);
        assertEq(operators[2], address(0));
        assertEq(operators[3], ops[0].operator);
        assertEq(registry.operatorsOf(new address[](0)).length, 0);
    }

    function test_operatorOf_unknownIsZero() public view {
        assertEq(registry.operatorOf(stranger), address(0));
        assertEq(registry.operatorOf(address(0)), address(0));
    }

    function test_isActiveSigner_tracksMembership() public {
        Op memory op = _newOp();
        assertFalse(registry.isActiveSigner(op.signer));
        _stakeAndRegister(op, minStake);
        assertTrue(registry.isActiveSigner(op.signer));
        assertFalse(registry.isActiveSigner(op.operator));
        vm.prank(op.operator);
        registry.deactivate();
        assertFalse(registry.isActiveSigner(op.signer));
    }

    function test_activeSigners_listsExactlyActiveKeys() public {
        _addOperators(5);
        vm.prank(ops[1].operator);
        registry.deactivate();
        _slash(ops[3].operator, 0, address(0), 0, true);

        address[] memory active = registry.activeSigners();
        assertEq(active.length, 3);
        assertEq(registry.activeCount(), 3);
        assertTrue(_contains(active, ops[0].signer));
        assertTrue(_contains(active, ops[2].signer));
        assertTrue(_contains(active, ops[4].signer));
        assertFalse(_contains(active, ops[1].signer));
        assertFalse(_contains(active, ops[3].signer));
    }

    function test_activeSetVersion_increasesOnEveryChange() public {
        assertEq(registry.activeSetVersion(), 0);
        _addOperators(2); // 2 activations
        assertEq(registry.activeSetVersion(), 2);
        vm.prank(ops[0].operator);
        registry.deactivate();
        assertEq(registry.activeSetVersion(), 3);
        vm.prank(ops[0].operator);
        registry.activate();
        assertEq(registry.activeSetVersion(), 4);
        _requestUnstake(ops[1].operator, 1);
        assertEq(registry.activeSetVersion(), 5);
        _slash(ops[0].operator, 0, address(0), 0, false);
        assertEq(registry.activeSetVersion(), 6);
        _slash(ops[0].operator, 0, address(0), 0, false); // no longer active: set unchanged
        assertEq(registry.activeSetVersion(), 6);
    }

    function test_operator_returnsPosition() public {
        Op memory op = _newOp();
        _stakeAndRegister(op, minStake * 3);
        _requestUnstake(op.operator, minStake);
        IStakingRegistry.Operator memory o = registry.operator(op.operator);
        assertEq(o.signer, op.signer);
        assertEq(o.stake, minStake * 2);
        assertEq(o.unbonding, minStake);
        assertEq(o.unbondingEnd, block.timestamp + period);
        assertTrue(o.active);
        assertFalse(o.jailed);
    }

    function test_signerProofDigest_isEip712SignerKey() public {
        Op memory op = Op({operator: makeAddr("digest-op"), signerKey: 0, signer: makeAddr("digest-signer")});
        bytes32 domainSeparator = keccak256(
            abi.encode(
                keccak256(
                    "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
                ),
                keccak256("Attesta Staking"),
                keccak256("1"),
                block.chainid,
                address(registry)
            )
        );
        bytes32 structHash = keccak256(
            abi.encode(keccak256("SignerKey(address operator,address signer)"), op.operator, op.signer)
        );
        assertEq(
            registry.signerProofDigest(op.operator, op.signer),
            keccak256(abi.encodePacked("\x19\x01", domainSeparator, structHash))
        );
    }

    function test_signerProofDigest_bindsOperatorSignerAndChain() public {
        address a = makeAddr("a");
        address b = makeAddr("b");
        bytes32 digest = registry.signerProofDigest(a, b);
        assertNotEq(digest, registry.signerProofDigest(b, a));
        assertNotEq(digest, registry.signerProofDigest(a, a));
        vm.chainId(block.chainid + 1);
        assertNotEq(digest, registry.signerProofDigest(a, b));
    }

    function test_token_returnsStakingToken() public view {
        assertEq(registry.token(), address(token));
        assertEq(registry.unbondingPeriod(), cfg.unbondingPeriod);
    }

    function test_constants_matchDocumentedBounds() public view {
        assertEq(registry.MAX_ACTIVE_BOUND(), 64);
        assertEq(registry.MIN_UNBONDING_PERIOD(), 1 hours);
        assertEq(registry.MAX_UNBONDING_PERIOD(), 365 days);
    }
}

/*//////////////////////////////////////////////////////////////
                        MAX ACTIVE BOUND
//////////////////////////////////////////////////////////////*/

contract StakingRegistryMaxActiveTest is StakingRegistryTestBase {
    function test_maxActive_setNeverExceedsBound() public {
        _addOperators(64);
        assertEq(registry.activeCount(), 64);
        Op memory extra = _newOp();
        _stakeAndRegister(extra, minStake);
        assertFalse(registry.isActiveSigner(extra.signer));
        assertEq(registry.activeCount(), 64);
        vm.expectRevert(_cannotActivate(extra.operator, REASON_SET_FULL));
        vm.prank(extra.operator);
        registry.activate();
    }

    function test_maxActive_lowerBoundIsEnforcedOnNewMembers() public {
        _setMaxActive(3);
        _addOperators(5);
        assertEq(registry.activeCount(), 3);
        for (uint256 i; i < 5; ++i) {
            assertEq(registry.isActiveSigner(ops[i].signer), i < 3);
        }
    }

    function test_setMaxActive_equalToActiveCount() public {
        _addOperators(3);
        vm.expectEmit(address(registry));
        emit ParameterSet("maxActive", 3);
        _setMaxActive(3);
        assertEq(registry.maxActive(), 3);
    }

    function test_RevertWhen_setMaxActiveBelowActiveCount() public {
        _addOperators(3);
        vm.expectRevert(_outOfBounds("maxActive", 2));
        vm.prank(admin);
        registry.setMaxActive(2);
        assertEq(registry.maxActive(), cfg.maxActive);
    }

    function test_RevertWhen_setMaxActiveZero() public {
        vm.expectRevert(_outOfBounds("maxActive", 0));
        vm.prank(admin);
        registry.setMaxActive(0);
    }

    function test_RevertWhen_setMaxActiveAboveBound() public {
        vm.expectRevert(_outOfBounds("maxActive", 65));
        vm.prank(admin);
        registry.setMaxActive(65);
    }

    function testFuzz_setMaxActive_enforcesBounds(uint256 value) public {
        _addOperators(2);
        value = bound(value, 0, 100);
        if (value < 2 || value > 64) {
            vm.expectRevert(_outOfBounds("maxActive", value));
            vm.prank(admin);
            registry.setMaxActive(value);
        } else {
            _setMaxActive(value);
            assertEq(registry.maxActive(), value);
        }
    }
}

/*//////////////////////////////////////////////////////////////
                          GOVERNANCE
//////////////////////////////////////////////////////////////*/

contract StakingRegistryGovernanceTest is StakingRegistryTestBase {
    function test_RevertWhen_settersCalledByNonAdmin() public {
        address[3] memory callers = [guardian, slasher, stranger];
        for (uint256 i; i < callers.length; ++i) {
            bytes memory err = _unauthorized(callers[i], DEFAULT_ADMIN_ROLE);
            vm.startPrank(callers[i]);
            vm.expectRevert(err);
            registry.setMinStake(1);
            vm.expectRevert(err);
            registry.setUnbondingPeriod(1 days);
            vm.expectRevert(err);
            registry.setMaxActive(10);
            vm.expectRevert(err);
            registry.setThreshold(7500, 2);
            vm.expectRevert(err);
            registry.setTreasury(callers[i]);
            vm.stopPrank();
        }
        assertEq(registry.minStake(), cfg.minStake);
        assertEq(registry.treasury(), treasury);
    }

    function test_setMinStake_updatesAndEmits() public {
        vm.expectEmit(address(registry));
        emit ParameterSet("minStake", 42 ether);
        vm.prank(admin);
        registry.setMinStake(42 ether);
        assertEq(registry.minStake(), 42 ether);
    }

    function test_setMinStake_acceptsUint96Max() public {
        vm.prank(admin);
        registry.setMinStake(type(uint96).max);
        assertEq(registry.minStake(), type(uint96).max);
    }

    function test_RevertWhen_setMinStakeZero() public {
        vm.expectRevert(_outOfBounds("minStake", 0));
        vm.prank(admin);
        registry.setMinStake(0);
    }

    function test_RevertWhen_setMinStakeAboveUint96() public {
        uint256 value = uint256(type(uint96).max) + 1;
        vm.expectRevert(_outOfBounds("minStake", value));
        vm.prank(admin);
        registry.setMinStake(value);
    }

    function test_setUnbondingPeriod_updatesAndEmits() public {
        vm.expectEmit(address(registry));
        emit ParameterSet("unbondingPeriod", 14 days);
        vm.prank(admin);
        registry.setUnbondingPeriod(14 days);
        assertEq(registry.unbondingPeriod(), 14 days);

        Op memory op = _newOp();
        _stake(op.operator, 1 ether);
        _requestUnstake(op.operator, 1 ether);
        assertEq(registry.operator(op.operator).unbondingEnd, block.timestamp + 14 days);
    }

    function testFuzz_setUnbondingPeriod_enforcesBounds(uint256 value) public {
        value = bound(value, 0, 400 days);
        if (value < escrow.slashingExposure() || value > 365 days) {
            vm.expectRevert(_outOfBounds("unbondingPeriod", value));
            vm.prank(admin);
            registry.setUnbondingPeriod(value);
            assertEq(registry.unbondingPeriod(), cfg.unbondingPeriod);
        } else {
            vm.prank(admin);
            registry.setUnbondingPeriod(value);
            assertEq(registry.unbondingPeriod(), value);
        }
    }

    function test_setUnbondingPeriod_acceptsEdges() public {
        uint256 exposure = escrow.slashingExposure();
        vm.startPrank(admin);
        registry.setUnbondingPeriod(exposure);
        assertEq(registry.unbondingPeriod(), exposure);
        registry.setUnbondingPeriod(365 days);
        assertEq(registry.unbondingPeriod(), 365 days);
        vm.stopPrank();
    }

    function test_deploy_bindsUnbondingToTheEscrowsExposure() public view {
        assertEq(address(registry.exposureSource()), address(escrow));
        IJobEscrow.Config memory c = escrow.config();
        assertEq(escrow.slashingExposure(), uint256(c.maxJobDuration) + c.challengeWindow + c.disputeTimeout);
    }

    /// A shorter period would let a signer withdraw before a dispute over its signature has ended.
    function test_RevertWhen_setUnbondingPeriod_belowTheEscrowsExposure() public {
        uint256 value = escrow.slashingExposure() - 1;
        vm.expectRevert(_outOfBounds("unbondingPeriod", value));
        vm.prank(admin);
        registry.setUnbondingPeriod(value);
        assertEq(registry.unbondingPeriod(), cfg.unbondingPeriod);
    }

    function test_setUnbondingPeriod_withoutExposureSourceAcceptsTheMinimum() public {
        StakingRegistry bare =
            new StakingRegistry(IERC20(address(token)), admin, 1 days, treasury, 1 ether, 3 days, 8, 6667, 1);
        vm.prank(admin);
        bare.setUnbondingPeriod(1 hours);
        assertEq(bare.unbondingPeriod(), 1 hours);
    }

    function test_setExposureSource_emitsAndBinds() public {
        StakingRegistry bare =
            new StakingRegistry(IERC20(address(token)), admin, 1 days, treasury, 1 ether, 3 days, 8, 6667, 1);
        vm.expectEmit(address(bare));
        emit ExposureSourceSet(address(escrow));
        vm.prank(admin);
        bare.setExposureSource(ISlashingExposure(address(escrow)));
        assertEq(address(bare.exposureSource()), address(escrow));
    }

    function test_RevertWhen_setExposureSource_exposureAboveThePeriod() public {
        StakingRegistry bare =
            new StakingRegistry(IERC20(address(token)), admin, 1 days, treasury, 1 ether, 1 days, 8, 6667, 1);
        uint256 exposure = escrow.slashingExposure();
        vm.expectRevert(_outOfBounds("exposure", exposure));
        vm.prank(admin);
        bare.setExposureSource(ISlashingExposure(address(escrow)));
    }

    function test_RevertWhen_setExposureSource_zeroOrNotAdmin() public {
        vm.expectRevert(IStakingRegistryErrors.StakingRegistryZeroAddress.selector);
        vm.prank(admin);
        registry.setExposureSource(ISlashingExposure(address(0)));
        vm.expectRevert(_unauthorized(stranger, DEFAULT_ADMIN_ROLE));
        vm.prank(stranger);
        registry.setExposureSource(ISlashingExposure(address(escrow)));
    }

    function test_RevertWhen_setUnbondingPeriodTooShort() public {
        vm.expectRevert(_outOfBounds("unbondingPeriod", 1 hours - 1));
        vm.prank(admin);
        registry.setUnbondingPeriod(1 hours - 1);
    }

    function test_RevertWhen_setUnbondingPeriodTooLong() public {
        vm.expectRevert(_outOfBounds("unbondingPeriod", 365 days + 1));
        vm.prank(admin);
        registry.setUnbondingPeriod(365 days + 1);
    }

    function test_setThreshold_updatesAndEmitsBoth() public {
        vm.expectEmit(address(registry));
        emit ParameterSet("thresholdBps", 7500);
        vm.expectEmit(address(registry));
        emit ParameterSet("minThreshold", 2);
        vm.prank(admin);
        registry.setThreshold(7500, 2);
        assertEq(registry.thresholdBps(), 7500);
        assertEq(registry.minThreshold(), 2);
    }

    function test_setThreshold_acceptsEdges() public {
        vm.startPrank(admin);
        registry.setThreshold(5001, 1);
        assertEq(registry.thresholdBps(), 5001);
        registry.setThreshold(10_000, 64);
        assertEq(registry.thresholdBps(), 10_000);
        assertEq(registry.minThreshold(), 64);
        vm.stopPrank();
    }

    function test_RevertWhen_setThresholdBpsNotAboveHalf() public {
        // M = N/2 would let two disjoint halves settle two different results.
        vm.expectRevert(_outOfBounds("thresholdBps", 5000));
        vm.prank(admin);
        registry.setThreshold(5000, 1);
    }

    function test_RevertWhen_setThresholdBpsAbove10000() public {
        vm.expectRevert(_outOfBounds("thresholdBps", 10_001));
        vm.prank(admin);
        registry.setThreshold(10_001, 1);
    }

    function test_RevertWhen_setThresholdFloorZero() public {
        vm.expectRevert(_outOfBounds("minThreshold", 0));
        vm.prank(admin);
        registry.setThreshold(6667, 0);
        assertEq(registry.minThreshold(), cfg.minThreshold);
    }

    function test_RevertWhen_setThresholdFloorAboveBound() public {
        vm.expectRevert(_outOfBounds("minThreshold", 65));
        vm.prank(admin);
        registry.setThreshold(6667, 65);
    }

    function test_setTreasury_redirectsSlashedStake() public {
        address newTreasury = makeAddr("new-treasury");
        vm.expectEmit(address(registry));
        emit TreasurySet(newTreasury);
        vm.prank(admin);
        registry.setTreasury(newTreasury);
        assertEq(registry.treasury(), newTreasury);

        Op memory op = _activeOp();
        uint256 oldTreasuryBefore = token.balanceOf(treasury);
        _slash(op.operator, 1000, address(0), 0, false);
        assertEq(token.balanceOf(newTreasury), minStake / 10);
        assertEq(token.balanceOf(treasury), oldTreasuryBefore);
    }

    function test_RevertWhen_setTreasuryZero() public {
        vm.expectRevert(IStakingRegistryErrors.StakingRegistryZeroAddress.selector);
        vm.prank(admin);
        registry.setTreasury(address(0));
    }
}

/*//////////////////////////////////////////////////////////////
                        PAUSE / UNPAUSE
//////////////////////////////////////////////////////////////*/

contract StakingRegistryPauseTest is StakingRegistryTestBase {
    Op internal op;

    function setUp() public override {
        super.setUp();
        op = _newOp();
        _stakeAndRegister(op, minStake * 2);
        _requestUnstake(op.operator, minStake / 2);
        vm.warp(block.timestamp + period);
    }

    function _pause() internal {
        vm.prank(guardian);
        registry.pause();
    }

    function test_pause_byGuardian() public {
        vm.expectEmit(address(registry));
        emit Pausable.Paused(guardian);
        _pause();
        assertTrue(registry.paused());
    }

    function test_RevertWhen_pauseByNonGuardian() public {
        address[3] memory callers = [admin, slasher, op.operator];
        for (uint256 i; i < callers.length; ++i) {
            vm.expectRevert(_unauthorized(callers[i], guardianRole));
            vm.prank(callers[i]);
            registry.pause();
        }
        assertFalse(registry.paused());
    }

    function test_RevertWhen_pauseTwice() public {
        _pause();
        vm.expectRevert(Pausable.EnforcedPause.selector);
        vm.prank(guardian);
        registry.pause();
    }

    function test_unpause_byAdmin() public {
        _pause();
        vm.expectEmit(address(registry));
        emit Pausable.Unpaused(admin);
        vm.prank(admin);
        registry.unpause();
        assertFalse(registry.paused());
        _stake(op.operator, 1);
    }

    function test_RevertWhen_unpauseByGuardian() public {
        _pause();
        vm.expectRevert(_unauthorized(guardian, DEFAULT_ADMIN_ROLE));
        vm.prank(guardian);
        registry.unpause();
        assertTrue(registry.paused());
    }

    function test_RevertWhen_unpauseNotPaused() public {
        vm.expectRevert(Pausable.ExpectedPause.selector);
        vm.prank(admin);
        registry.unpause();
    }

    function test_RevertWhen_stakePaused() public {
        _pause();
        _fund(op.operator, 1 ether);
        vm.expectRevert(Pausable.EnforcedPause.selector);
        vm.prank(op.operator);
        registry.stake(1 ether);
    }

    function test_RevertWhen_registerSignerPaused() public {
        Op memory fresh = _newOp();
        bytes memory proof = _signerProof(fresh.operator, fresh.signerKey);
        _pause();
        vm.expectRevert(Pausable.EnforcedPause.selector);
        vm.prank(fresh.operator);
        registry.registerSigner(fresh.signer, proof);
    }

    function test_RevertWhen_activatePaused() public {
        vm.prank(op.operator);
        registry.deactivate();
        _pause();
        vm.expectRevert(Pausable.EnforcedPause.selector);
        vm.prank(op.operator);
        registry.activate();
    }

    function test_RevertWhen_requestUnstakePaused() public {
        _pause();
        vm.expectRevert(Pausable.EnforcedPause.selector);
        vm.prank(op.operator);
        registry.requestUnstake(1);
    }

    function test_RevertWhen_withdrawPaused() public {
        _pause();
        vm.expectRevert(Pausable.EnforcedPause.selector);
        vm.prank(op.operator);
        registry.withdraw();
        assertEq(token.balanceOf(op.operator), 0);
    }

    function test_deactivate_worksWhilePaused() public {
        _pause();
        vm.prank(op.operator);
        registry.deactivate();
        assertFalse(registry.isActiveSigner(op.signer));
    }

    function test_slash_worksWhilePaused() public {
        _pause();
        assertEq(_slash(op.operator, BPS, address(0), 0, true), minStake * 2);
        assertTrue(registry.operator(op.operator).jailed);
    }
}

/*//////////////////////////////////////////////////////////////
                      TWO-STEP ADMIN
//////////////////////////////////////////////////////////////*/

contract StakingRegistryAdminTest is StakingRegistryTestBase {
    address internal newAdmin = makeAddr("new-admin");

    function test_RevertWhen_grantDefaultAdminRoleDirectly() public {
        vm.expectRevert(IAccessControlDefaultAdminRules.AccessControlEnforcedDefaultAdminRules.selector);
        vm.prank(admin);
        registry.grantRole(DEFAULT_ADMIN_ROLE, newAdmin);
        assertFalse(registry.hasRole(DEFAULT_ADMIN_ROLE, newAdmin));
    }

    function test_RevertWhen_revokeDefaultAdminRoleDirectly() public {
        vm.expectRevert(IAccessControlDefaultAdminRules.AccessControlEnforcedDefaultAdminRules.selector);
        vm.prank(admin);
        registry.revokeRole(DEFAULT_ADMIN_ROLE, admin);
    }

    function test_RevertWhen_beginDefaultAdminTransferByNonAdmin() public {
        vm.expectRevert(_unauthorized(guardian, DEFAULT_ADMIN_ROLE));
        vm.prank(guardian);
        registry.beginDefaultAdminTransfer(guardian);
    }

    function test_defaultAdminTransfer_takesTwoStepsAndDelay() public {
        vm.prank(admin);
        registry.beginDefaultAdminTransfer(newAdmin);
        (address pending, uint48 schedule) = registry.pendingDefaultAdmin();
        assertEq(pending, newAdmin);
        assertEq(schedule, block.timestamp + cfg.adminDelay);
        assertEq(registry.defaultAdmin(), admin, "admin changes before acceptance");

        bytes memory early = abi.encodeWithSelector(
            IAccessControlDefaultAdminRules.AccessControlEnforcedDefaultAdminDelay.selector, schedule
        );
        vm.expectRevert(early);
        vm.prank(newAdmin);
        registry.acceptDefaultAdminTransfer();

        vm.warp(schedule); // the schedule must have strictly passed
        vm.expectRevert(early);
        vm.prank(newAdmin);
        registry.acceptDefaultAdminTransfer();

        vm.warp(uint256(schedule) + 1);
        vm.prank(newAdmin);
        registry.acceptDefaultAdminTransfer();

        assertEq(registry.defaultAdmin(), newAdmin);
        assertTrue(registry.hasRole(DEFAULT_ADMIN_ROLE, newAdmin));
        assertFalse(registry.hasRole(DEFAULT_ADMIN_ROLE, admin));

        vm.expectRevert(_unauthorized(admin, DEFAULT_ADMIN_ROLE));
        vm.prank(admin);
        registry.setMinStake(1);
        vm.prank(newAdmin);
        registry.setMinStake(1);
        assertEq(registry.minStake(), 1);
    }

    function test_RevertWhen_acceptDefaultAdminTransferByOther() public {
        vm.prank(admin);
        registry.beginDefaultAdminTransfer(newAdmin);
        vm.warp(block.timestamp + cfg.adminDelay + 1);
        vm.expectRevert(
            abi.encodeWithSelector(
                IAccessControlDefaultAdminRules.AccessControlInvalidDefaultAdmin.selector, stranger
            )
        );
        vm.prank(stranger);
        registry.acceptDefaultAdminTransfer();
        assertEq(registry.defaultAdmin(), admin);
    }

    function test_cancelDefaultAdminTransfer_blocksAcceptance() public {
        vm.prank(admin);
        registry.beginDefaultAdminTransfer(newAdmin);
        vm.prank(admin);
        registry.cancelDefaultAdminTransfer();
        vm.warp(block.timestamp + cfg.adminDelay + 1);
        vm.expectRevert(
            abi.encodeWithSelector(
                IAccessControlDefaultAdminRules.AccessControlInvalidDefaultAdmin.selector, newAdmin
            )
        );
        vm.prank(newAdmin);
        registry.acceptDefaultAdminTransfer();
        assertEq(registry.defaultAdmin(), admin);
    }

    function test_roles_adminGrantsAndRevokesSlasher() public {
        vm.prank(admin);
        registry.revokeRole(slasherRole, slasher);
        Op memory op = _activeOp();
        vm.expectRevert(_unauthorized(slasher, slasherRole));
        vm.prank(slasher);
        registry.slash(op.operator, BPS, address(0), 0, true);
    }
}

/*//////////////////////////////////////////////////////////////
                        HOSTILE PAYEES
//////////////////////////////////////////////////////////////*/

/// @notice RELIABILITY C9: a payee that re-enters on receive cannot get paid twice.
contract StakingRegistryReentrancyTest is StakingRegistryTestBase {
    ReentrantPayee internal payee;

    function setUp() public override {
        super.setUp();
        _redeployWith(IERC20(address(new HookToken())));
        payee = new ReentrantPayee();
        token.mint(address(payee), minStake);
        payee.execute(address(token), abi.encodeCall(IERC20.approve, (address(registry), minStake)));
        payee.execute(address(registry), abi.encodeCall(StakingRegistry.stake, (minStake)));
        payee.execute(address(registry), abi.encodeCall(StakingRegistry.requestUnstake, (minStake)));
        HookToken(address(token)).setHooked(address(payee), true);
    }

    function test_RevertWhen_withdrawReentered() public {
        vm.warp(block.timestamp + period);
        payee.arm(address(registry), abi.encodeCall(StakingRegistry.withdraw, ()), false);

        payee.execute(address(registry), abi.encodeCall(StakingRegistry.withdraw, ()));

        assertTrue(payee.reentered());
        assertFalse(payee.reentrySucceeded());
        assertEq(
            payee.reentryRevertData(),
            abi.encodeWithSelector(ReentrancyGuardTransient.ReentrancyGuardReentrantCall.selector)
        );
        assertEq(token.balanceOf(address(payee)), minStake, "paid more than once");
        assertEq(registry.operator(address(payee)).unbonding, 0);
        _assertSolvent();
    }

    function test_RevertWhen_slashBountyReentersWithdraw() public {
        Op memory op = _activeOp();
        vm.warp(block.timestamp + period);
        payee.arm(address(registry), abi.encodeCall(StakingRegistry.withdraw, ()), false);

        uint256 taken = _slash(op.operator, 5000, address(payee), 1000, true);

        assertTrue(payee.reentered());
        assertFalse(payee.reentrySucceeded());
        assertEq(
            payee.reentryRevertData(),
            abi.encodeWithSelector(ReentrancyGuardTransient.ReentrancyGuardReentrantCall.selector)
        );
        assertEq(token.balanceOf(address(payee)), taken / 10, "only the bounty arrives during the slash");
        assertEq(registry.operator(address(payee)).unbonding, minStake, "reentrant withdraw went through");
        _assertSolvent();
    }
}

/// @notice RELIABILITY C10: a reporter the token refuses to pay (USDC/USDT-style blocklist) must not stop the
/// slash. Today `slash` pushes the bounty, so the whole slash reverts and the offender keeps its stake; via
/// Slashing.slashOverturned this also blocks JobEscrow.resolveDispute when the challenger is blocked.
contract StakingRegistrySlashBlockedPayeeTest is StakingRegistryTestBase {
    function setUp() public override {
        super.setUp();
        _redeployWith(IERC20(address(new BlacklistToken())));
    }

    function test_slash_blockedReporterDoesNotStopSlash() public {
        Op memory op = _activeOp();
        BlacklistToken(address(token)).setBlocked(reporter, true);
        uint256 treasuryBefore = token.balanceOf(treasury);

        vm.prank(slasher);
        (bool ok,) = address(registry)
            .call(abi.encodeCall(StakingRegistry.slash, (op.operator, 5000, reporter, 1000, true)));

        assertTrue(ok, "a blocked reporter lets the offender escape the slash");
        assertEq(registry.operator(op.operator).stake, minStake / 2);
        assertTrue(registry.operator(op.operator).jailed);
        assertFalse(registry.isActiveSigner(op.signer));
        assertEq(token.balanceOf(reporter), 0);
        assertGe(token.balanceOf(treasury) - treasuryBefore, minStake / 2 - minStake / 20);
        assertGe(token.balanceOf(address(registry)), registry.totalStaked() + registry.totalUnbonding());
    }

    function test_slash_unblockedReporterStillPaidOnBlocklistToken() public {
        Op memory op = _activeOp();
        _slash(op.operator, 5000, reporter, 1000, true);
        assertEq(token.balanceOf(reporter), minStake / 20);
    }
}

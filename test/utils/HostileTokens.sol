// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {TestToken} from "../../contracts/mocks/TestToken.sol";

/// @title ITokenReceiver
/// @notice A recipient that wants to hear about incoming tokens (the ERC-777 / ERC-1363 style hook).
interface ITokenReceiver {
    /// @notice Called by `HookToken` after `amount` moved from `from` to the receiver.
    function onTokenReceived(address from, uint256 amount) external;
}

/// @title HookToken
/// @notice A mintable ERC-20 that calls `onTokenReceived` on recipients that opted in, after the balance
/// moved. That hook is how a hostile payee gets control in the middle of a payment (RELIABILITY C9).
/// @dev Test-only. Mints keep `TestToken`'s interface so `AttestaTest` helpers work unchanged.
contract HookToken is TestToken {
    /// @notice Recipients whose `onTokenReceived` is called.
    mapping(address account => bool) public hooked;

    /// @notice Opts `account` in or out of the receive hook.
    function setHooked(address account, bool on) external {
        hooked[account] = on;
    }

    function _update(address from, address to, uint256 value) internal override {
        super._update(from, to, value);
        if (hooked[to]) ITokenReceiver(to).onTokenReceived(from, value);
    }
}

/// @title BlacklistToken
/// @notice A mintable ERC-20 that refuses to move tokens from or to blocked accounts, the way USDC and USDT
/// do: the payee "that reverts" of RELIABILITY C10.
contract BlacklistToken is TestToken {
    /// @notice A transfer touched a blocked account.
    error BlacklistTokenBlocked(address account);

    /// @notice Accounts that can neither send nor receive.
    mapping(address account => bool) public blocked;

    /// @notice Blocks or unblocks `account`.
    function setBlocked(address account, bool on) external {
        blocked[account] = on;
    }

    function _update(address from, address to, uint256 value) internal override {
        if (blocked[from]) revert BlacklistTokenBlocked(from);
        if (blocked[to]) revert BlacklistTokenBlocked(to);
        super._update(from, to, value);
    }
}

/// @title ReentrantPayee
/// @notice A payee contract that, when it receives a `HookToken` payment, calls back once into a target
/// with prepared calldata. With `bubble` it rethrows the inner revert, so the whole payment reverts; without,
/// it records the inner call's outcome and lets the payment finish, so a test can show that the reentrant
/// call failed and changed nothing.
contract ReentrantPayee is ITokenReceiver {
    /// @notice Only the deployer (the test) drives this contract.
    error ReentrantPayeeNotOwner(address caller);

    address public immutable owner;

    address public target;
    bytes public reentryData;
    bool public bubble;
    bool public armed;

    /// @notice Whether the hook fired and called the target.
    bool public reentered;
    /// @notice Whether that reentrant call succeeded.
    bool public reentrySucceeded;
    /// @notice The reentrant call's revert data, if it failed.
    bytes public reentryRevertData;

    constructor() {
        owner = msg.sender;
    }

    /// @notice Calls `to` with `data` as this contract (approve, createJob, challenge, claim ...).
    function execute(address to, bytes calldata data) external returns (bytes memory result) {
        if (msg.sender != owner) revert ReentrantPayeeNotOwner(msg.sender);
        bool ok;
        (ok, result) = to.call(data);
        if (!ok) _revertWith(result);
    }

    /// @notice On the next payment received, calls `target_` with `data`; rethrows its revert if `bubble_`.
    function arm(address target_, bytes calldata data, bool bubble_) external {
        if (msg.sender != owner) revert ReentrantPayeeNotOwner(msg.sender);
        target = target_;
        reentryData = data;
        bubble = bubble_;
        armed = true;
    }

    /// @notice Cancels a pending `arm` (a bubbled revert rolls back the hook's own disarming).
    function disarm() external {
        if (msg.sender != owner) revert ReentrantPayeeNotOwner(msg.sender);
        armed = false;
    }

    /// @inheritdoc ITokenReceiver
    function onTokenReceived(address, uint256) external {
        if (!armed) return;
        armed = false;
        reentered = true;
        (bool ok, bytes memory result) = target.call(reentryData);
        reentrySucceeded = ok;
        if (!ok) {
            reentryRevertData = result;
            if (bubble) _revertWith(result);
        }
    }

    function _revertWith(bytes memory data) private pure {
        assembly ("memory-safe") {
            revert(add(data, 32), mload(data))
        }
    }
}
